"""journald MESSAGE_IDs of kartud's notable events; etc/systemd/catalog/kartud.catalog explains each one.

Mark a log record with one through ``extra``::

    log.info("job %s printed", job_id, extra={"job": job_id, "message_id": MSG_JOB_PRINTED})

and find them with ``journalctl MESSAGE_ID=<id>`` or ``journalctl -x`` (which shows the catalog text).
The ids are fixed for ever: a new kind of event gets a new id (``journalctl --new-id128``).
"""

MSG_READY = "fc741ec78d714a9e91fa3d1a6495093a"              # started: store open and checked, in-doubt recovery done
MSG_STOPPED = "88065ce82bf24e08bcb307f75bd63845"            # stopped cleanly (or after an internal error)
MSG_JOB_PRINTED = "00e0846182fc4b49a5b64012a856e482"        # a card left the printer into the output hopper
MSG_JOB_IN_DOUBT = "35b691ea8c9246a2a0befebf40a95ab2"       # a card's fate is unknown; a person must resolve it
MSG_CARD_REJECTED = "8e10038215af4caf869f3c311d5b8648"      # a card went to the reject box; its blank is spoiled
MSG_FAULT_RAISED = "29c2d821bf814b0aa31af618df7763da"       # a fault became active
MSG_FAULT_CLEARED = "35386331d548404a9c52277801f84acd"      # a fault is gone
MSG_BLANKS_LOW = "233e7889dfc6485083ca07880c3248c4"         # blanks of a card type fell below blanks.low_threshold
MSG_DAILY_LIMIT_REACHED = "bbab6ad825d444f48b1e36150ded6e23"  # limits.daily cards fed today; waits for tomorrow
MSG_INTERNAL_ERROR = "62494922ebfc44bba22915462086604b"     # a bug: kartud stops so that systemd restarts it
MSG_UNHEALTHY = "23ead0176bc34afc95a41d3311817e7d"          # the watchdog is not fed: loop, store or device stuck
MSG_GAVE_UP = "b514fbb68a004d899300e8ef73b9f98c"            # systemd stopped restarting kartud; the lamp says so
MSG_REQUEST_QUARANTINED = "932c4a8b5688408e847535f3163e2499"  # a request met a defect (or died twice): set aside
MSG_LINK_DOWN = "ce6bbbfbed27494abccd4b0b94e6b5f8"          # the office's broker cannot be reached (or refused us)
MSG_LINK_UP = "2980bde107a444c290b157f8484c8faa"            # the office link is back after a failure

ALL = {name: value for name, value in globals().items() if name.startswith("MSG_")}
