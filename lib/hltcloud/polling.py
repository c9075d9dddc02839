"""Waiting for something to become true, one look at a time (the tools' polling loops)."""
import time


def until(condition, timeout, first=0.01, most=0.5):
    """Call CONDITION() until it returns a true value or TIMEOUT seconds have passed; the
    pause between two looks starts at FIRST and grows 1.5 times up to MOST, so that a quick
    change is seen quickly and a long wait costs few looks. Returns CONDITION's last value."""
    deadline = time.monotonic() + timeout
    pause = first
    while True:
        value = condition()
        left = deadline - time.monotonic()
        if value or left <= 0:
            return value
        time.sleep(min(pause, left))
        pause = min(most, pause * 1.5)
