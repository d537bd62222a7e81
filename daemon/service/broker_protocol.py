"""Which MQTT version the link speaks (mqtt.protocol = auto | 5 | 3.1.1), when auto falls back, and why, in words."""

from __future__ import annotations

import logging

log = logging.getLogger("kartud.mqtt")

MQTT5, MQTT311 = "5", "3.1.1"
UNSUPPORTED_VERSION = 0x84      # MQTT 5 CONNACK "unsupported protocol version" (paho maps 3.1.1's return code 1 to it)
SILENCES_TO_FALL_BACK = 2       # unanswered MQTT 5 CONNECTs in a row that count as "this broker does not speak 5"


class ProtocolChoice:
    """The MQTT version to connect with, owned by the event loop.

    ``auto`` starts with MQTT 5 and falls back to 3.1.1 when the broker refuses 5 (one CONNACK saying
    "unsupported protocol version" is proof) or leaves an MQTT 5 CONNECT unanswered twice in a row (a
    3.1.1-only broker may stay silent when the CONNECT carries a Will; twice, because one slow answer
    on a bad network is no proof). The first version that works is kept for the life of the process:
    an upgraded broker is spoken to in MQTT 5 after kartud restarts, and a box that settled on MQTT 5
    is never silently moved to 3.1.1, where a MQTT 5 office would stop hearing its answers.

    >>> choice = ProtocolChoice("auto", "10.0.0.5:1883", 10.0)
    >>> choice.current, choice.refused(UNSUPPORTED_VERSION), choice.current
    ('5', True, '3.1.1')
    >>> choice.worked()
    >>> choice.refused(UNSUPPORTED_VERSION), choice.current
    (False, '3.1.1')
    """

    def __init__(self, setting: str, where: str, answer_timeout_s: float):
        self.setting = setting
        self.where = where
        self.answer_timeout_s = answer_timeout_s
        self.current = MQTT311 if setting == MQTT311 else MQTT5
        self.settled = setting != "auto"      # auto settles on the first version the broker accepts
        self.reason = f"mqtt.protocol = {setting}" if self.settled else "mqtt.protocol = auto: trying MQTT 5 first"
        self._silences = 0

    def refused(self, reason_value: int) -> bool:
        """The broker's CONNACK said no; True when the link must now try MQTT 3.1.1."""
        if reason_value != UNSUPPORTED_VERSION or self.current != MQTT5 or self.settled:
            return False
        return self._fall_back("the broker refused MQTT 5 (unsupported protocol version)")

    def unanswered(self) -> bool:
        """A CONNECT got no CONNACK in time, or the connection closed before one came; True when the link must
        now try MQTT 3.1.1."""
        if self.current != MQTT5 or self.settled:
            return False
        self._silences += 1
        if self._silences < SILENCES_TO_FALL_BACK:
            return False
        return self._fall_back(f"the broker left {self._silences} MQTT 5 connections in a row unanswered, "
                               f"{self.answer_timeout_s:g} s each")

    def answered(self) -> None:
        """A CONNACK came (yes or no): the broker does answer MQTT 5, so earlier silences were the network's."""
        self._silences = 0

    def worked(self) -> None:
        """The broker accepted us: say once, in words, which version is spoken and why."""
        if self.settled and self.setting != "auto":
            return
        if not self.settled:
            self.settled = True
            if self.current == MQTT5:
                self.reason = "mqtt.protocol = auto: the broker accepted MQTT 5"
            log.info("speaking MQTT %s to the broker at %s (%s)%s", self.current, self.where, self.reason,
                     "; kept until kartud restarts, which tries MQTT 5 again" if self.current == MQTT311 else "")

    def unanswered_words(self) -> str:
        """The office link's last error for a CONNECT that went unanswered."""
        hint = ""
        if self.current == MQTT5 and self.setting == MQTT5:
            hint = ("; a broker that speaks only MQTT 3.1.1 does this: set mqtt.protocol = \"auto\" "
                    "or \"3.1.1\"")
        elif self.current == MQTT5 and self.settled:      # auto, and this broker took MQTT 5 before
            hint = ("; if the broker now speaks only MQTT 3.1.1, restart kartud to let mqtt.protocol = \"auto\" "
                    "choose again")
        return (f"no answer to our MQTT {self.current} connection from {self.where} within "
                f"{self.answer_timeout_s:g} s{hint}")

    def refusal_hint(self) -> str:
        """What to do about a CONNACK "unsupported protocol version" that does not make auto fall back."""
        if self.setting == MQTT5:
            return 'we spoke MQTT 5: set mqtt.protocol = "auto" or "3.1.1"'
        if self.setting == "auto" and self.current == MQTT5:
            return ('we spoke MQTT 5, which this broker accepted before: restart kartud to let '
                    'mqtt.protocol = "auto" choose again')
        return f"we spoke MQTT {self.current}"

    def status(self) -> dict[str, str]:
        """The office link's ``protocol`` (the version in use or being tried) and ``protocol_reason`` (why)."""
        return {"protocol": self.current, "protocol_reason": self.reason}

    def _fall_back(self, why: str) -> bool:
        self.current = MQTT311
        self.reason = f"mqtt.protocol = auto: {why}"
        log.warning("the broker at %s does not speak MQTT 5: %s; trying MQTT 3.1.1 (answers then go to "
                    "{root}/response/<command>, correlated by request_id)", self.where, why)
        return True
