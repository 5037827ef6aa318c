"""The PSPs `paystream up` can run on this machine, by connector name: for
each, the processes it needs, where it answers, and the settings that point
paystream's connector (and the PSP itself) at it.

`paystream up --psp NAME[,NAME…]` runs the PSPs named. A PSP plugs in with one
entry in `LOCAL_PSPS`: a function from the stack's surroundings to its
`LocalPsp`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from payments.routing import RoutingTable
from payments.routing import routing_table_from_json
from stack import localstripe
from stack.ports import free_port
from stack.tls import TlsFiles


@dataclass(frozen=True)
class Surroundings:
    """What a PSP's local run needs to know of the stack around it."""

    data_dir: Path
    scheme: str  # http, or https with --tls
    gateway_url: str
    secrets: dict[str, str]
    tls: TlsFiles | None
    # The stack's ports by the `paystream up` flag that sets each, e.g. "--simulator-port".
    ports: dict[str, int]


@dataclass(frozen=True)
class LocalPsp:
    """One PSP run locally."""

    url: str
    # Settings for every process of the stack (PAYSTREAM_*): what points the
    # connector, and the PSP, at each other.
    env: dict[str, str]
    # Its processes, as (name, argv), started before paystream's own; none
    # for a PSP reached elsewhere.
    processes: tuple[tuple[str, list[str]], ...] = ()
    # Polled until it answers 200, before the gateway starts.
    health_url: str | None = None
    # What it listens on, by flag: checked free before anything starts.
    ports: dict[str, int] = field(default_factory=dict)
    # A line for the start-up banner: how to look at it.
    note: str = ""
    # A payment method token it approves: the banner's example payment.
    approved_method: str = "tok_visa"
    # Settings for its own processes only, beside the stack's.
    process_env: dict[str, str] = field(default_factory=dict)
    # Run once its health URL answers: what it needs told before paystream starts.
    ready: Callable[[], None] | None = None
    # What stack.json says of it, beside its URL under `psps`.
    info: dict[str, str] = field(default_factory=dict)


def local_simulator(around: Surroundings) -> LocalPsp:
    """The simulator: `paystream psp-simulator`, its book in the data folder,
    its callbacks signed with a secret of the stack and sent to the gateway."""
    port = around.ports["--simulator-port"]
    url = f"{around.scheme}://127.0.0.1:{port}"
    env = {
        "PAYSTREAM_PSP_URL": url,
        "PAYSTREAM_SIMULATOR_BOOK": str(around.data_dir / "psp-simulator.sqlite3"),
        "PAYSTREAM_PSP_WEBHOOK_SECRET": around.secrets["psp_webhook_secret"],
        "PAYSTREAM_SIMULATOR_WEBHOOK_SECRET": around.secrets["psp_webhook_secret"],
        "PAYSTREAM_SIMULATOR_WEBHOOK_URL": f"{around.gateway_url}/webhooks/simulator",
    }
    if around.tls is not None:
        # Both ends check the other's certificate against the local CA.
        env["PAYSTREAM_PSP_CA_FILE"] = str(around.tls.ca)
        env["PAYSTREAM_SIMULATOR_CA_FILE"] = str(around.tls.ca)
    command = [sys.executable, "-m", "paystream", "psp-simulator", "--port", str(port)]
    return LocalPsp(
        url=url,
        env=env,
        processes=(("psp-simulator", command),),
        health_url=f"{url}/healthz",
        ports={"--simulator-port": port},
        note="its book at /_book",
    )


def local_stripe(around: Surroundings, environ: Mapping[str, str] = os.environ) -> LocalPsp:
    """Stripe itself when STRIPE_API_KEY is set (at STRIPE_API_BASE if set,
    its webhooks signed with STRIPE_WEBHOOK_SECRET: nothing runs here).
    Otherwise the local Stripe: localstripe on a free port behind the Stripe
    proxy (`stack.stripe_proxy`, served by `stack.stripe_proxy_server`:
    Stripe's idempotency rules and the drill's faults) on `--stripe-port`,
    its webhooks sent to the gateway's `/webhooks/stripe`, signed with a secret of the stack."""
    if api_key := environ.get("STRIPE_API_KEY", ""):
        api_base = environ.get("STRIPE_API_BASE") or "https://api.stripe.com"
        webhook_secret = environ.get("STRIPE_WEBHOOK_SECRET", "")
        return LocalPsp(
            url=api_base,
            env=_stripe_settings(api_key, api_base, webhook_secret, local=False),
            note="Stripe itself: STRIPE_API_KEY is set",
            approved_method="pm_card_visa",
            info={"stripeUrl": api_base},
        )
    if not localstripe.localstripe_installed():
        raise localstripe.LocalStripeMissing(localstripe.MISSING)
    port, emulator_port = around.ports["--stripe-port"], free_port()
    url, emulator = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{emulator_port}"
    secret = around.secrets["stripe_webhook_secret"]
    proxy = [sys.executable, "-m", "stack.stripe_proxy_server", "--port", str(port)]
    return LocalPsp(
        url=url,
        env=_stripe_settings(localstripe.LOCALSTRIPE_API_KEY, url, secret, local=True),
        processes=(
            ("localstripe", localstripe.localstripe_argv(emulator_port)),
            ("stripe-proxy", [*proxy, "--upstream", emulator]),
        ),
        health_url=f"{url}/_proxy/healthz",
        ports={"--stripe-port": port},
        note=f"localstripe at {emulator}, behind a proxy keeping Stripe's idempotency keys",
        approved_method="pm_card_visa",
        # Its webhook client (aiohttp) trusts what OpenSSL's SSL_CERT_FILE names.
        process_env={"SSL_CERT_FILE": str(around.tls.ca)} if around.tls else {},
        ready=lambda: localstripe.register_webhook(
            emulator, "paystream", f"{around.gateway_url}/webhooks/stripe", secret
        ),
        info={"stripeUrl": url, "localstripeUrl": emulator},
    )


def _stripe_settings(
    api_key: str, api_base: str, webhook_secret: str, *, local: bool
) -> dict[str, str]:
    """The settings paystream's processes build their StripeConfig from."""
    return {
        "PAYSTREAM_STRIPE_API_KEY": api_key,
        "PAYSTREAM_STRIPE_API_BASE": api_base,
        "PAYSTREAM_STRIPE_WEBHOOK_SECRET": webhook_secret,
        "PAYSTREAM_STRIPE_LOCALSTRIPE": "true" if local else "false",
    }


# Every PSP `paystream up` can run here.
LOCAL_PSPS: dict[str, Callable[[Surroundings], LocalPsp]] = {
    "simulator": local_simulator,
    "stripe": local_stripe,
}


def check_runnable(names: Sequence[str]) -> None:
    """ValueError unless `paystream up` can run every PSP named (one at least)."""
    unknown = [name for name in names if name not in LOCAL_PSPS]
    if unknown or not names:
        raise ValueError(
            f"--psp {','.join(unknown) or '(none)'}: no PSP of that name can run here"
            f" (these can: {', '.join(sorted(LOCAL_PSPS))})"
        )


def local_psps(names: Sequence[str], around: Surroundings) -> dict[str, LocalPsp]:
    """The PSPs named, in order, as they run around this stack."""
    check_runnable(names)
    return {name: LOCAL_PSPS[name](around) for name in names}


def stack_routing(names: Sequence[str], routing_file: Path | None) -> RoutingTable:
    """The stack's routing table: the file's, every PSP it names one the
    stack runs; without one, everything to the first PSP. ValueError saying
    what is wrong."""
    if routing_file is None:
        return RoutingTable(default=names[0])
    try:
        text = routing_file.read_text()
    except OSError as error:
        raise ValueError(f"{routing_file} cannot be read: {error.strerror}") from None
    try:
        return routing_table_from_json(text, known=names)
    except ValueError as error:
        raise ValueError(f"{routing_file}: {error}") from None
