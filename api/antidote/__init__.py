"""The Antidote dialect: the REST calls and the socket.io terminal an unchanged antidote-web front end makes,
translated onto Syringe's own state (the LiveLessons façade, Learners, the catalog). Nothing here keeps state
of its own beyond caches of what it renders and the terminals it has open.

- ``grpc``: errors as grpc-gateway wrote them (``{"error", "code", "message"}``) and the route class that
  turns Syringe's exceptions into them;
- ``views``: catalog and live lessons as antidote-core v0.7's protobuf JSON (upper-camel keys, zero values
  left out);
- ``cors``: which browser origins may call the dialect, and the middleware that says so;
- ``terminal``: the WebSSH2-style socket.io (v2, engine.io 3) terminal, bridged to the native terminal's code;
- ``mount``: how the app takes all of it in (``install``), and lets go of it (``close``).
"""
