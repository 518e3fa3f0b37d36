"""The project's one command line, ``realm`` (``realm --help``), and the front end of the RTL
simulation runner (:mod:`realm.simulate`). It sits on top of the four packages: it may import
``hw``, ``golden``, ``synth`` and ``tb``; none of them imports it."""
