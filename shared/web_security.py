"""What every answer of every app says to browsers, where requests come from, and which
requests other sites may not make.

Vigil's answers hold patient data, so none may be framed, sniffed into another type, or have
its URL leaked in a Referer; pages run only the scripts the app serves itself. The proxy
settings say how many proxies in front of the app to believe: by default none, so a client
cannot pick its own address (the rate limit's key, the audit trail's) with X-Forwarded-For.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Flask, current_app, request
from flask.wrappers import Response
from werkzeug.exceptions import Forbidden
from werkzeug.middleware.proxy_fix import ProxyFix

from shared.config import Setting, parse_int

WEB_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "PROXY_FIX_X_FOR",
        parse_int(0, 5),
        0,
        "Proxies in front of the app whose X-Forwarded-For to believe; 0 ignores the header.",
    ),
    Setting(
        "PROXY_FIX_X_PROTO",
        parse_int(0, 5),
        0,
        "Proxies whose X-Forwarded-Proto to believe (a TLS-terminating proxy: 1).",
    ),
    Setting(
        "HSTS_SECONDS",
        parse_int(0, 2 * 365 * 86400),
        0,
        "Strict-Transport-Security max-age sent on HTTPS answers; 0 sends none.",
    ),
)

# Only the app's own scripts, styles and connections (the live stream's ws: among them:
# 'self' matches the page's host on ws/wss); no plugins, no <base>, no framing.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

# Fetch metadata a browser sends with a request it makes for this site's own pages; "none"
# is the user's own doing (the address bar, a bookmark).
OWN_SITE_FETCHES = frozenset({"same-origin", "none"})


@dataclass(frozen=True, slots=True)
class SecurityHeaders:
    """The headers every answer carries; a view may send its own Content-Security-Policy."""

    content_security_policy: str = PAGE_POLICY
    hsts_seconds: int = 0

    def apply(self, response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", self.content_security_policy)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        # Not no-referrer: over HTTPS, Flask-WTF wants the Referer of the page a form or a
        # change came from, and a page's own requests must still send it.
        headers.setdefault("Referrer-Policy", "same-origin")
        # Over plain HTTP the header means nothing to a browser, and a wrong one, sent before
        # TLS is really in front, would lock users out: only on HTTPS, and only if asked.
        if self.hsts_seconds and request.is_secure:
            headers.setdefault(
                "Strict-Transport-Security", f"max-age={self.hsts_seconds}; includeSubDomains"
            )
        return response


def init_web_security(app: Flask) -> None:
    """Believe the configured proxies, and send the security headers with every answer."""
    config = app.config
    if config["PROXY_FIX_X_FOR"] or config["PROXY_FIX_X_PROTO"]:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=config["PROXY_FIX_X_FOR"], x_proto=config["PROXY_FIX_X_PROTO"]
        )
    headers = SecurityHeaders(hsts_seconds=config["HSTS_SECONDS"])
    app.extensions["vigil.security_headers"] = headers
    app.after_request(headers.apply)


def refuse_cross_site() -> None:
    """Forbidden unless the browser says this request comes from this site's own pages.

    Browsers send Sec-Fetch-Site (and Origin) with every unsafe request; a client that is
    not a browser sends neither, and is not riding anyone's cookie.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in OWN_SITE_FETCHES:
        raise Forbidden("Changes may only be made from Vigil's own pages.")
    origin = request.headers.get("Origin")
    if origin is None:
        return
    # The host the browser asked (a proxy may pass on another: PUBLIC_URL names the public).
    public_url = current_app.config.get("PUBLIC_URL")
    hosts = [request.host, *([urlsplit(public_url).netloc] if public_url else [])]
    if not any(same_origin(origin, host) for host in hosts):
        raise Forbidden("Changes may only be made from Vigil's own pages.")


def same_origin(origin: str, host: str) -> bool:
    """Whether an Origin header names the host the request was sent to.

    The scheme is not compared: behind a TLS proxy the app may see http while the page is
    https. An opaque origin ("null": a sandboxed frame, a file) is never this site.
    """
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.path or parts.query or parts.fragment or parts.username is not None:
        return False
    origin_host = _host_port(parts.netloc, parts.scheme)
    # A port that does not parse leaves no host: never a match, even with a Host as broken.
    return origin_host[0] != "" and origin_host == _host_port(host, parts.scheme)


def _host_port(netloc: str, scheme: str) -> tuple[str, int | None]:
    parts = urlsplit(f"//{netloc}")
    try:
        port = parts.port
    except ValueError:
        return "", None
    default = 443 if scheme == "https" else 80
    return (parts.hostname or "").lower(), port or default
