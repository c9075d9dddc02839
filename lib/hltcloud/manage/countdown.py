"""A wait for the cloud, shown as it goes: poll until done or a deadline, one progress line
(rewritten on a TTY; off a TTY a line when the state changes, or every so often)."""
import time

from hltcloud import polling

# Seconds between two looks: FIRST_POLL after the first look, then 1.5 times longer each time
# up to POLL (polling.until). A delete the cloud finishes within a second is seen within
# about a tenth of a second of it; a long wait costs one request a second.
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
    seen = {"text": None, "shown": None, "at": None}

    def done():
        finished, text = look()
        seen["text"] = text
        now = time.monotonic()
        left = timeout - (now - start)
        if not finished and left > 0 and (
                progress.in_place or seen["at"] is None
                or (on_change and text != seen["shown"]) or now - seen["at"] >= line_every):
            progress.update(f"{text} ({left:.0f} s left)")
            seen.update(shown=text, at=now)
        return finished

    finished = polling.until(done, timeout, first=FIRST_POLL, most=POLL)
    elapsed = time.monotonic() - start
    if finished:
        progress.done(seen["text"].format(elapsed=f"{elapsed:.0f}s"))
    else:
        progress.done(f"{seen['text']} after {timeout} s: {at_timeout}")
    return finished, elapsed
