"""The garbage collector in a process that the ``spindle`` command owns.

A command's fixed cost is mostly start-up: a few hundred modules and the
attrs classes they define, about 30,000 objects that live until the process
ends. CPython's cyclic collector keeps walking them anyway: while they are
imported (each young-generation pass walks what was just built), during the
run (each full pass walks all of them again) and, the most expensive, when
the interpreter exits, where its final passes walk and free every one of
them although the operating system is about to reclaim the memory at once.
On a 2-core machine that is 50-80 ms of a 0.3 s ``spindle run`` of one
node; nothing is gained by it.

So, only when :func:`spindle.cli.main` is the process's entry point (the
console script, ``python -m spindle``; never when a host or a test calls
``main(args)``):

* :func:`own` turns the collector off while the command starts up
  (imports, settings, the engine, loading the workflow file): that is all
  long-lived objects, and reference counting still frees everything else;
* :func:`settle` is called before any code that may run for long — a
  command's event loop (every built-in command that runs, waits or follows
  goes through :func:`spindle._cli._running.call`), or a command from a
  plugin: it moves what start-up built into the collector's permanent
  generation (``gc.freeze``) and turns the collector on again, so the run is
  collected as usual, without walking start-up's objects;
* at exit (``atexit``, after every non-daemon thread has ended and after
  every exit handler registered later), what is left is frozen too, so the
  interpreter's final passes skip it.

What this gives up is what Python already does not promise: a ``__del__``
of an object still alive in a reference cycle when the interpreter exits
(the store, the event loop and its thread pools are closed explicitly
before that; objects freed by reference counting are finalized as always).
Standard library only.
"""

from __future__ import annotations

import atexit
import gc

__all__ = ["own", "owned", "settle"]

_state = {"owned": False, "paused": False}


def own() -> None:
    """Take the collector over for this process: off during start-up, frozen at exit."""
    if _state["owned"]:
        return
    _state["owned"] = True
    if gc.isenabled():
        gc.disable()
        _state["paused"] = True
    atexit.register(gc.freeze)


def owned() -> bool:
    """Whether :func:`own` was called in this process."""
    return _state["owned"]


def settle() -> None:
    """Start-up is over: freeze what it built and collect as usual from now on.

    Called before a command's event loop runs, or before a plugin's command
    runs; a no-op unless :func:`own` paused the collector, and after the first call.
    """
    if not _state["paused"]:
        return
    _state["paused"] = False
    gc.freeze()
    gc.enable()
