"""``edgeprune agent``: serve ONNX benchmarks on this device for `edgeprune profile --remote`."""

from __future__ import annotations

import os

import click


@click.command("agent")
@click.option("--port", default=8765, show_default=True, help="TCP port (0: any free port).")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind; 0.0.0.0 exposes it to the network.",
)
@click.option("--token", help="Shared secret clients must send (default: $EDGEPRUNE_AGENT_TOKEN).")
@click.option("--max-upload-mb", default=64, show_default=True, help="Largest accepted upload.")
@click.option(
    "--busy-wait-s",
    default=0.0,
    show_default=True,
    help="How long a request waits for a running benchmark before 503.",
)
def command(port: int, host: str, token: str | None, max_upload_mb: int, busy_wait_s: float) -> None:
    """Benchmark uploaded ONNX models on this device, one at a time, behind a token."""
    from edgeprune.latency.agent import TOKEN_ENV, AgentServer, AgentSettings

    settings = AgentSettings(
        token=token or os.environ.get(TOKEN_ENV, ""),
        host=host,
        port=port,
        max_upload_bytes=max_upload_mb * 1024 * 1024,
        busy_wait_s=busy_wait_s,
    )
    server = AgentServer(settings)
    click.echo(f"edgeprune agent on {server.url} ({server.info['device']}); Ctrl-C stops it", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
