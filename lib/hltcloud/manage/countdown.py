"""A wait for the cloud, shown as it goes: poll until done or a deadline, one progress line
(rewritten on a TTY; off a TTY a line when the state changes, or every so often)."""
import time

# Seconds between two looks: FIRST_POLL after the first look, then 1.5 times longer each time
# up to POLL. A delete the cloud finishes within a second is seen within about a tenth of a
# second of it; a long wait costs one request a second.
FIRST_POLL = 0.1
POLL = 1.0
LINE_EVERY = 10.0  # off a TTY: a progress line when the state changes or this often


def countdown(rep, prefix, timeout, look, line_every=LINE_EVERY, on_change=True,
              at_timeout="timeout!"):
    """Poll LOOK() -> (done, text) until done or TIMEOUT seconds; (done, elapsed seconds).
    Off a TTY a line is printed every LINE_EVERY seconds, and (ON_CHANGE) when TEXT changes;
    the last line ends with AT_TIMEOUT when the time is up."""
    progress = rep.progress(prefix)
    start = time.monotonic()
    last_text, last_line = None, None
    interval = FIRST_POLL
    while True:
        done, text = look()
        elapsed = time.monotonic() - start
        if done:
            progress.done(text.format(elapsed=f"{elapsed:.0f}s"))
            return True, elapsed
        left = max(0, timeout - elapsed)
        if left <= 0:
            progress.done(f"{text} after {timeout} s: {at_timeout}")
            return False, elapsed
        now = time.monotonic()
        if (progress.in_place or last_line is None or (on_change and text != last_text)
                or now - last_line >= line_every):
            progress.update(f"{text} ({left:.0f} s left)")
            last_text, last_line = text, now
        time.sleep(min(interval, left))
        interval = min(POLL, interval * 1.5)
