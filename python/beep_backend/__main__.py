"""`python -m beep_backend --transport http|pipe|grpc ...`: start one backend server.

See `PROTOCOL.md` next to this package for the contract.
"""

import os
import sys
import time

from .log import log

USAGE = """usage: python -m beep_backend --transport http|pipe|grpc [--socket PATH] [--port N]
                         [--max-body BYTES] [--env-name NAME] [--token-stdin]
                         [--insecure-no-token] [--preload MODULE:FUNC]

The token: with --token-stdin, the first line of stdin (then stdin is closed); else
BEEP_BACKEND_TOKEN (visible in /proc/<pid>/environ). Environment: BEEP_PARENT_PID,
BEEP_ENV_NAME. Prints one JSON line on stdout: {"event": "ready", ...} or {"event": "error", ...}.
"""

DEFAULT_MAX_BODY = 16 * 1024 * 1024
_FLAGS = {"--insecure-no-token", "--token-stdin"}
MAX_TOKEN_LINE = 4096
_OPTIONS = {"--transport", "--socket", "--port", "--max-body", "--env-name", "--preload"}


class UsageError(Exception):
    pass


def parse_args(argv):
    """A tiny parser (argparse costs ~4 ms of imports at every start)."""
    opts = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            sys.stderr.write(USAGE)
            raise SystemExit(0)
        name, eq, value = arg.partition("=")
        if name in _FLAGS and not eq:
            opts[name] = True
        elif name in _OPTIONS:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise UsageError("%s needs a value" % name)
                value = argv[i]
            opts[name] = value
        else:
            raise UsageError("unknown argument %r" % arg)
        i += 1
    transport = opts.get("--transport")
    if transport not in ("http", "pipe", "grpc"):
        raise UsageError("--transport must be http, pipe or grpc")
    if "--socket" in opts and transport != "pipe":
        raise UsageError("--socket is only for --transport pipe")
    try:
        max_body = int(opts.get("--max-body", DEFAULT_MAX_BODY))
        port = int(opts.get("--port", 0))
    except ValueError:
        raise UsageError("--max-body and --port take integers") from None
    if max_body < 1024 or max_body > 2**31 - 1:
        raise UsageError("--max-body must be between 1024 and 2^31-1 bytes")
    if not 0 <= port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    preload = opts.get("--preload")
    if preload is not None:
        module, colon, func = preload.partition(":")
        if not colon or not module or not func.isidentifier():
            raise UsageError("--preload takes MODULE:FUNC (e.g. app.model:load)")
    return {
        "preload": preload,
        "transport": transport,
        "socket": opts.get("--socket"),
        "port": port,
        "max_body": max_body,
        "env_name": opts.get("--env-name") or os.environ.get("BEEP_ENV_NAME") or None,
        "insecure": bool(opts.get("--insecure-no-token")),
        "token_stdin": bool(opts.get("--token-stdin")),
    }


def emit(event):
    """Write the one protocol line of stdout."""
    from .wire import dumps

    sys.stdout.write(dumps(event).decode() + "\n")
    sys.stdout.flush()


def fail(kind, message, code=1):
    emit({"event": "error", "kind": kind, "message": message})
    return code


def main(argv=None):
    started_at = time.time()
    try:
        opts = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        sys.stderr.write(USAGE)
        return fail("bad_argument", str(exc), 2)

    # Out of `os.environ` in any case (user code and its children do not inherit it); only a
    # token read from stdin is also absent from /proc/<pid>/environ.
    token = os.environ.pop("BEEP_BACKEND_TOKEN", "").encode("utf-8")
    if opts["token_stdin"]:
        try:
            token = read_token_line()
        except OSError as exc:
            return fail("no_token", "could not read the token from stdin: %s" % exc, 2)
    if not token:
        if not opts["insecure"]:
            if opts["token_stdin"]:
                return fail("no_token", "--token-stdin: stdin held no token line", 2)
            return fail(
                "no_token", "BEEP_BACKEND_TOKEN is not set (pass --token-stdin, or --insecure-no-token)", 2
            )
        token = None
        log("WARNING: --insecure-no-token: any local process can run code here")

    parent = os.environ.get("BEEP_PARENT_PID")
    if parent is not None:
        try:
            parent = int(parent)
        except ValueError:
            return fail("bad_argument", "BEEP_PARENT_PID must be a process id", 2)

    from .dispatcher import Dispatcher

    dispatcher = Dispatcher(
        {
            "python_version": sys.version.split()[0],
            "executable": sys.executable,
            "prefix": sys.prefix,
            "env_name": opts["env_name"],
            "pid": os.getpid(),
            "transport": opts["transport"],
            "started_at": started_at,
        }
    )
    if sys.flags.no_site and (opts["transport"] == "grpc" or opts["preload"]):
        add_site_packages()  # grpcio lives there, and what a preload imports
    if opts["preload"]:
        failed = preload(opts["preload"], dispatcher)
        if failed is not None:
            return fail("preload_failed", failed)
    try:
        server = make_server(opts, dispatcher, token)
        address = server.bind()
    except ImportError as exc:
        return fail("missing_dependency", "the %s transport needs %s" % (opts["transport"], exc))
    except OSError as exc:
        return fail("bind_failed", str(exc))
    except Exception as exc:
        kind = getattr(exc, "kind", "internal")
        return fail(kind, str(exc))

    if parent is not None:
        from .watchdog import watch_parent

        watch_parent(parent, dispatcher)
    dispatcher.install_signal_handlers()
    emit({"event": "ready", "transport": opts["transport"], "address": address, "pid": os.getpid()})
    # From here on, stdout is the log: a stray print (or C-level write) must not look like protocol.
    try:
        os.dup2(2, 1)
    except OSError:
        pass

    if sys.flags.no_site and opts["transport"] != "grpc":
        add_site_packages()  # late, while the client connects

    serve = getattr(server, "serve", None)  # the pipe transport runs its own main loop
    if serve is not None:
        serve()
    else:
        dispatcher.run_forever()
    try:
        server.close()
    except Exception as exc:
        log("close failed: %r" % exc)
    dispatcher.exit(0)
    return 0


def preload(spec, dispatcher):
    """Run `module:func` once (before the ready line) and bind its value to `func` in the
    default session. Returns None, or the failure with the Python traceback."""
    module_name, _, func_name = spec.partition(":")
    try:
        import importlib

        func = getattr(importlib.import_module(module_name), func_name)
        value = func()
    except (Exception, SystemExit) as exc:  # any failure fails the start, with its traceback
        import traceback

        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return "preload `%s` raised %s: %s\n%s" % (spec, type(exc).__name__, exc, trace.rstrip())
    dispatcher.operations.session({}).namespace[func_name] = value
    return None


def read_token_line():
    """The first line of fd 0 (the token), then fd 0 becomes the null device.

    Read with `os.read`, not `sys.stdin`, so no buffer keeps what follows; user code then
    reads EOF from stdin and never sees the pipe. Works the same on Windows.
    """
    data = b""
    while b"\n" not in data and len(data) <= MAX_TOKEN_LINE:
        chunk = os.read(0, 512)
        if not chunk:
            break
        data += chunk
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
    finally:
        os.close(null)
    return data.split(b"\n", 1)[0].strip()


def add_site_packages():
    """Started with -S (faster start): add site-packages so user code imports the env's packages."""
    import site

    site.main()


def make_server(opts, dispatcher, token):
    transport = opts["transport"]
    if transport == "http":
        from .http_server import HttpServer

        return HttpServer(dispatcher, token, opts["max_body"], opts["port"])
    if transport == "pipe" and sys.platform == "win32":
        from .winpipe import WinPipeServer

        return WinPipeServer(dispatcher, token, opts["max_body"], opts["socket"])
    if transport == "pipe":
        from .pipe_server import PipeServer

        return PipeServer(dispatcher, token, opts["max_body"], opts["socket"])
    from .grpc_server import GrpcServer

    return GrpcServer(dispatcher, token, opts["max_body"], opts["port"])


if __name__ == "__main__":
    sys.exit(main())
