"""The emulator's five resources, one module each, and what they share.

``common`` holds the shared context (store, run timing, id source, 404s, pagination);
``assistants``, ``threads``, ``messages``, ``runs`` and ``steps`` each hold the operations of
one resource as functions of that context, listed in the module's ``OPERATIONS`` by operation id.
``reconciler.emulator.service`` puts the lists together and dispatches to them.

The modules depend on one another in one direction only::

    common ◄── assistants, threads ◄── runs ◄── messages, steps

``threads`` also appends messages to a thread (thread creation, run replies and the messages
API all do), which keeps ``runs`` — whose settling writes replies — below ``messages``.
"""
