"""Jobs: the record of truth, its state machine, the store, the worker loop and the reaper."""
