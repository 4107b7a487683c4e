"""Functions for flaky.yaml: a service call that fails twice before it succeeds."""


def fetch(ctx):
    """Fail on the first two attempts of a run, succeed on the third.

    The attempt counter is a file in the run's directory, so it survives the
    process: retrying after a crash counts on from where it was.
    """
    counter = ctx.run_dir / "fetch.attempts"
    attempt = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempt))
    if attempt < 3:
        raise ConnectionError(f"service unavailable on attempt {attempt} (flaky on purpose)")
    return {"status": "ok", "attempts": attempt}


def report(fetched):
    """Say how many attempts the fetch took."""
    return f"fetched after {fetched['attempts']} attempts"
