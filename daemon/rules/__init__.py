"""Pure decisions, no I/O: job states and validation, config, clock, working hours and calendar, scheduler, signing, errors."""
