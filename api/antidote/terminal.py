"""The terminal antidote-web opens: WebSSH2 over socket.io v2 (engine.io protocol 3), served with
python-socketio 4 and python-engineio 3 under ``/socket.io/``, and bridged to the native terminal's own code
(``syringe/access/terminal_bridge.py`` and ``terminal.py``): the same SSH session and xterm PTY, the same
caps per live lesson, frame and input caps, and idle timeout.

The front end connects with the query ``host``, ``port``, ``username`` and ``userpassword`` (the live
lesson's ``Host``, the presentation's ``Port``, ``SSHUser``, ``SSHPassword``), emits ``geometry`` (cols,
rows) once connected, ``resize`` ({cols, rows}) and ``data`` (text); it receives ``data`` (text),
``ssherror`` (text) and the disconnect.

This is never an SSH relay: ``host`` must be a name the dialect gave out (``views.terminal_host``: an
endpoint of a live lesson) and ``port`` the port of one of that endpoint's ssh presentations, or the terminal
is refused before anything is dialled. Syringe then reaches the endpoint where the runtime says it is, with the
image's credentials; the query's ``username`` and ``userpassword`` are never used.

A refusal is said as WebSSH2 says an SSH failure: the socket.io connection is accepted, ``ssherror`` carries
the reason, and the server disconnects. A socket.io v2 client retries a connection that fails, forever, but
never one the server ended: a tab left open on a live lesson that has gone stops asking."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import socketio
from socketio import packet as socketio_packet
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse
from starlette.types import Message, Receive, Scope, Send

from api.antidote.grpc import AntidoteError
from api.antidote.guesses import Guesses
from api.antidote.views import parse_terminal_host
from syringe.access.probes import Target
from syringe.access.terminal_bridge import CLOSE_NORMAL, TerminalLimits, serve_terminal
from syringe.errors import Busy, NotFound, RuntimeUnavailable, SyringeError

GEOMETRY_WAIT = 2.0  # seconds to wait for the client's size before opening the shell at 80x24
PENDING_MESSAGES = 256  # messages held while the shell is being opened (beyond: the client is flooding)
CLOSE_WAIT = 5.0  # seconds a terminal may take to end when Syringe stops
CLOSE_REFUSED = 4403  # the terminal was refused (the reason goes to the client as ssherror)
DRAIN_WAIT = 5.0  # seconds a client has to take its last messages before its session is closed
# antidote-web sends no keepalive: typing into a terminal keeps its live lesson alive, at most this often (s).
KEEPALIVE_EVERY = 60.0


class BrowserGone(Exception):
    """The socket.io client has disconnected."""


class UnknownLiveLesson(NotFound):
    """The terminal's host names a live lesson that does not exist: a guess, maybe."""


@dataclass
class _Terminal:
    sid: str
    livelesson: str
    target: Target | None  # None: refused, for ``refusal``
    refusal: str = ""
    inbox: asyncio.Queue[Mapping[str, Any]] = field(default_factory=asyncio.Queue)
    namespace: str = "/"  # the client's: socket.io v2 takes the path of WEBSSH2_LOCATION as the namespace
    size: tuple[int, int] = (80, 24)
    sized: asyncio.Event = field(default_factory=asyncio.Event)
    opened: bool = False
    gone: bool = False
    task: asyncio.Task[None] | None = None


def _quiet(name: str) -> logging.Logger:
    """The library's logger, through Syringe's own log handling and only from warnings up (given a bool, the
    library would add a handler of its own, and log every packet when True)."""
    logger = logging.getLogger(f"api.antidote.{name}")
    logger.setLevel(logging.WARNING)
    if not logger.filters:
        # A poll of a session that has just ended (its shell exited, its tab closed) is routine, not an error.
        logger.addFilter(lambda record: not record.getMessage().startswith("Invalid session"))
    return logger


def _size(cols: Any, rows: Any) -> tuple[int, int] | None:
    """Columns and rows within the native terminal's bounds, or None."""
    numbers = all(isinstance(n, int) and not isinstance(n, bool) for n in (cols, rows))
    if numbers and 10 <= cols <= 1000 and 5 <= rows <= 500:
        return cols, rows
    return None


class _Browser:
    """One socket.io client as the bridge's ``Browser``: its events arrive as WebSocket-like messages, the
    shell's output leaves as ``data`` events of text (UTF-8 decoded across chunk boundaries)."""

    def __init__(self, server: socketio.AsyncServer, terminal: _Terminal) -> None:
        self.server = server
        self.terminal = terminal
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    async def receive(self) -> Mapping[str, Any]:
        return await self.terminal.inbox.get()

    async def send_bytes(self, data: bytes) -> None:
        if self.terminal.gone:
            raise BrowserGone
        text = self.decoder.decode(data)
        if text:
            await self.server.emit("data", text, to=self.terminal.sid, namespace=self.terminal.namespace)

    async def close(self, code: int, reason: str) -> None:
        """``ssherror`` with the reason (unless the shell just ended), then socket.io's disconnect. The client
        is given the time to take both before its engine.io session is closed: python-engineio 3 answers a
        poll of a closed session with 400, and what was still queued would never arrive."""
        terminal = self.terminal
        if terminal.gone:
            return
        if code != CLOSE_NORMAL:
            await self.server.emit("ssherror", reason, to=terminal.sid, namespace=terminal.namespace)
        goodbye = socketio_packet.Packet(socketio_packet.DISCONNECT, namespace=terminal.namespace)
        await self.server._send_packet(terminal.sid, goodbye)
        engine = self.server.eio.sockets.get(terminal.sid)
        if engine is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(engine.queue.join(), DRAIN_WAIT)
        if not terminal.gone:  # the client has not closed it on hearing the disconnect: close it here
            await engine.close(wait=False)
            self.server.eio.sockets.pop(terminal.sid, None)


class _Clients(socketio.AsyncManager):  # type: ignore[misc]
    """python-socketio 4's client list, with ``emit`` as Python 3.11 allows it (4.6 hands ``asyncio.wait``
    coroutines, which 3.11 refuses)."""

    async def emit(
        self, event: str, data: Any, namespace: str, room: str | None = None, skip_sid: Any = None,
        callback: Any = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        if namespace not in self.rooms or room not in self.rooms[namespace]:
            return
        skipped = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        sends = []
        for sid in self.get_participants(namespace, room):
            if sid not in skipped:
                ack = self._generate_ack_id(sid, namespace, callback) if callback is not None else None
                sends.append(self.server._emit_internal(sid, event, data, namespace, ack))
        await asyncio.gather(*sends)


class _AnyNamespace(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio 4 calls handlers of namespaces registered by name only, but a socket.io v2 client uses
    the path of the URL it is given (WEBSSH2_LOCATION) as its namespace: every event of every namespace goes
    to the one dispatcher. (``_trigger_event`` is python-socketio 4's; the dependency is pinned below 5.)"""

    def __init__(self, terminals: SocketTerminals, **options: Any) -> None:
        super().__init__(**options)
        self._terminals = terminals

    async def _trigger_event(self, event: str, namespace: str, *args: Any) -> Any:
        return await self._terminals.on_event(event, namespace, *args)


class SocketTerminals:
    """The socket.io server and the terminals open through it. ``state`` is the app's: the live lessons, the
    terminal slots shared with the native terminal, and the settings, read when a client connects."""

    def __init__(self, state: Any, max_message_bytes: int) -> None:
        self.state = state
        self.terminals: dict[str, _Terminal] = {}
        self.server = _AnyNamespace(
            self,
            client_manager=_Clients(),
            async_mode="asgi",
            cors_allowed_origins=[],  # origins are checked by the dialect's own middleware (cors.py)
            cookie=None,
            max_http_buffer_size=max_message_bytes,
            async_handlers=False,  # keystrokes in order, and a slow shell slows its own client only
            logger=_quiet("socketio"),
            engineio_logger=_quiet("engineio"),
        )
        self._engine_app = socketio.ASGIApp(self.server, socketio_path="socket.io")
        self._background: set[asyncio.Future[Any]] = set()
        self._kept: dict[str, float] = {}  # live lesson -> loop time a terminal last kept it alive
        engine = self.server.eio
        start = engine.start_background_task

        def tracked(target: Any, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
            # engine.io's own tasks (its ping monitor), so that close() can end them.
            future: asyncio.Future[Any] = start(target, *args, **kwargs)
            self._background.add(future)
            future.add_done_callback(self._background.discard)
            return future

        engine.start_background_task = tracked

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The socket.io endpoint. python-engineio 3 raises KeyError for a request of a session that closes
        between its check and its use (a client's last poll as the shell ends): answered as it answers a
        closed session, 400."""
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] in ("http.response.start", "websocket.accept", "websocket.close")
            await send(message)

        try:
            await self._engine_app(scope, receive, tracking)
        except KeyError:
            if not started and scope["type"] == "http":
                await PlainTextResponse("Invalid session", 400)(scope, receive, send)

    # ------------------------------------------------------------------ events
    async def on_event(self, event: str, namespace: str, *args: Any) -> Any:
        if event == "connect":
            return self._connect(namespace, args[0], args[1])
        terminal = self.terminals.get(args[0]) if args else None
        if terminal is None or (terminal.target is None and event not in ("disconnect", "geometry")):
            return None
        if event == "disconnect":
            if namespace in ("/", terminal.namespace):
                self._gone(terminal)
        elif event == "geometry":
            self._geometry(terminal, namespace, args[1:])
        elif event == "resize" and len(args) > 1 and isinstance(args[1], dict):
            self._resize(terminal, args[1].get("cols"), args[1].get("rows"))
        elif event == "data" and len(args) > 1 and isinstance(args[1], str | bytes):
            data = args[1].encode() if isinstance(args[1], str) else args[1]
            await self._put(terminal, {"type": "websocket.receive", "bytes": data})
            self._keep_alive(terminal.livelesson)
        return None

    def _connect(self, namespace: str, sid: str, environ: Mapping[str, Any]) -> bool:
        if namespace != "/":
            terminal = self.terminals.get(sid)
            if terminal is None:
                return False
            terminal.namespace = namespace
            return True
        query = parse_qs(environ.get("QUERY_STRING", ""))
        host, port = (query.get(name, [""])[0] for name in ("host", "port"))
        connection = HTTPConnection(environ["asgi.scope"])
        guesses: Guesses = self.state.antidote_guesses
        try:
            guesses.check(connection)
            try:
                livelesson, target = self.resolve(host, port)
            except UnknownLiveLesson:
                guesses.missed(connection)
                raise
            self.state.terminal_slots.acquire(livelesson)
        except (SyringeError, AntidoteError) as exc:
            terminal = _Terminal(sid, "", None, str(exc))
        else:
            terminal = _Terminal(sid, livelesson, target)
        self.terminals[sid] = terminal
        terminal.task = asyncio.create_task(self._serve(terminal), name=f"antidote-terminal-{sid}")
        return True

    def resolve(self, host: str, port: str) -> tuple[str, Target]:
        """(live lesson id, where and as whom to log in) for a terminal asked for at ``host``:``port``.
        Raises NotFound unless that is an ssh presentation of an endpoint of a live lesson."""
        manager = self.state.manager
        if manager is None:
            raise RuntimeUnavailable(f"live lessons are unavailable: {self.state.runtime_problem or 'no runtime'}")
        refusal = NotFound(f"{host}:{port} is not a terminal of any live lesson")
        parsed = parse_terminal_host(host)
        if parsed is None or not port.isdigit():
            raise refusal
        livelesson_id, endpoint_name = parsed
        try:
            ll = manager.get(livelesson_id)
        except NotFound:
            raise UnknownLiveLesson(str(refusal)) from None
        source = manager.tree.lessons.get(ll.lesson) if not ll.deleting else None
        endpoint = next((e for e in source.lesson.endpoints if e.name == endpoint_name), None) if source else None
        ssh = [p for p in endpoint.presentations if p.type == "ssh" and p.port == int(port)] if endpoint else []
        if not ssh:
            raise refusal
        try:
            return ll.id, manager.target_for(ll.id, None, endpoint_name, ssh[0].name)
        except Busy as exc:
            raise Busy(f"{host}:{port}: {exc}") from exc

    def _geometry(self, terminal: _Terminal, namespace: str, args: tuple[Any, ...]) -> None:
        size = _size(*args[:2]) if len(args) >= 2 else None
        if terminal.opened:
            if size is not None:
                self._resize(terminal, *size)
            return
        terminal.namespace = namespace
        if size is not None:
            terminal.size = size
        terminal.sized.set()

    def _resize(self, terminal: _Terminal, cols: Any, rows: Any) -> None:
        size = _size(cols, rows)
        if size is None:
            return
        if not terminal.opened:
            terminal.size = size
            return
        control = json.dumps({"type": "resize", "cols": size[0], "rows": size[1]})
        terminal.inbox.put_nowait({"type": "websocket.receive", "text": control})

    async def _put(self, terminal: _Terminal, message: Mapping[str, Any]) -> None:
        if terminal.inbox.qsize() >= PENDING_MESSAGES and not terminal.opened:
            # Typing into a shell that is not open yet, faster than anyone types: refuse the flood.
            await self.server.emit("ssherror", "too much input before the shell opened", to=terminal.sid,
                                   namespace=terminal.namespace)  # fmt: skip
            self._gone(terminal)
            await self.server.disconnect(terminal.sid, namespace=terminal.namespace)
            return
        terminal.inbox.put_nowait(message)

    def _keep_alive(self, livelesson: str) -> None:
        now = asyncio.get_running_loop().time()
        manager = self.state.manager
        if manager is None or now - self._kept.get(livelesson, now - KEEPALIVE_EVERY) < KEEPALIVE_EVERY:
            return
        self._kept[livelesson] = now

        async def keep() -> None:
            with contextlib.suppress(SyringeError):  # gone meanwhile: nothing to keep
                await manager.keepalive(livelesson)

        future = asyncio.ensure_future(keep())
        self._background.add(future)
        future.add_done_callback(self._background.discard)

    def _gone(self, terminal: _Terminal) -> None:
        if not terminal.gone:
            terminal.gone = True
            terminal.sized.set()
            terminal.inbox.put_nowait({"type": "websocket.disconnect"})

    # ------------------------------------------------------------------ the shell
    async def _serve(self, terminal: _Terminal) -> None:
        """Once the client has said its size (and so its namespace), the shell; or the refusal."""
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(terminal.sized.wait(), GEOMETRY_WAIT)
            if terminal.gone:
                return
            browser = _Browser(self.server, terminal)
            if terminal.target is None:
                await browser.close(CLOSE_REFUSED, terminal.refusal)
                return
            terminal.opened = True
            columns, rows = terminal.size
            await serve_terminal(browser, terminal.target, columns, rows, self._limits(), (BrowserGone,))
        finally:
            self.terminals.pop(terminal.sid, None)
            if terminal.target is not None:
                self.state.terminal_slots.release(terminal.livelesson)
                if all(t.livelesson != terminal.livelesson for t in self.terminals.values()):
                    self._kept.pop(terminal.livelesson, None)

    def _limits(self) -> TerminalLimits:
        access = self.state.settings.access
        return TerminalLimits(
            idle_timeout=access.terminal_idle_timeout,
            max_frame=access.terminal_max_frame_bytes,
            max_input=access.terminal_max_input_bytes,
        )

    async def close(self) -> None:
        """End every terminal (their SSH sessions with them) and engine.io's own tasks."""
        for terminal in list(self.terminals.values()):
            self._gone(terminal)
        tasks = [t.task for t in self.terminals.values() if t.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=CLOSE_WAIT)
            for task in pending:
                task.cancel()
        for future in list(self._background):
            future.cancel()
