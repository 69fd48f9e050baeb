"""Authentication: static bearer tokens from configuration, the demo's guest sign-in, and the
portal's own administrator token (generated once into the data directory when no token is
configured, so a fresh install is never open).

Sign-in for people and permissions come with their own issue; every route already goes through
:meth:`AuthService.authenticate`, so they plug in here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path

from greenroom.auth.model import Principal
from greenroom.core.config import Settings
from greenroom.core.errors import AuthenticationError

GUEST = Principal(subject="user:default/guest", kind="user")
SESSION_COOKIE = "greenroom_session"


class AuthService:
    def __init__(self, settings: Settings) -> None:
        self._tokens: dict[str, Principal] = {
            ea.options.token: Principal(subject=ea.options.subject)
            for ea in settings.backend.auth.externalAccess
        }
        self.guest_enabled = settings.greenroom.demo
        self.admin_token = self._admin_token(settings.home)
        self._tokens.setdefault(self.admin_token, Principal(subject="admin"))
        self._cookie_key = hashlib.sha256(b"session:" + self.admin_token.encode()).digest()

    @staticmethod
    def _admin_token(home: Path) -> str:
        path = home / "admin-token"
        if path.exists():
            return path.read_text().strip()
        home.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(24)
        path.write_text(token + "\n")
        path.chmod(0o600)
        return token

    def from_token(self, token: str) -> Principal:
        for known, principal in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return principal
        raise AuthenticationError("invalid token")

    def authenticate(self, authorization: str | None, cookie: str | None = None) -> Principal:
        """Resolve the caller from an ``Authorization`` header (``Bearer <token>``, or ``Basic`` with
        the token as password, as git clients send) or from a session cookie.

        Raises AuthenticationError when neither identifies anyone.
        """
        if authorization:
            scheme, _, value = authorization.partition(" ")
            value = value.strip()
            if scheme.lower() == "bearer" and value:
                return self.from_token(value)
            if scheme.lower() == "basic" and value:
                try:
                    _user, _, password = base64.b64decode(value).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    raise AuthenticationError("malformed basic credentials") from None
                return self.from_token(password)
            raise AuthenticationError("unsupported authorization scheme; send 'Bearer <token>'")
        if cookie:
            principal = self.from_session(cookie)
            if principal:
                return principal
        raise AuthenticationError("Missing credentials: send 'Authorization: Bearer <token>'")

    # Sessions: a signed cookie naming the subject. Stateless, so every replica accepts it.
    def session_for(self, principal: Principal) -> str:
        body = base64.urlsafe_b64encode(f"{principal.kind}|{principal.subject}".encode()).decode()
        sig = hmac.new(self._cookie_key, body.encode(), hashlib.sha256).hexdigest()
        return f"{body}.{sig}"

    def from_session(self, cookie: str) -> Principal | None:
        body, _, sig = cookie.partition(".")
        good = hmac.new(self._cookie_key, body.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(good, sig):
            return None
        try:
            kind, _, subject = base64.urlsafe_b64decode(body).decode().partition("|")
        except (ValueError, UnicodeDecodeError):
            return None
        if subject == GUEST.subject and not self.guest_enabled:
            return None
        return Principal(subject=subject, kind="user" if kind == "user" else "service")

    def sign_in_guest(self) -> Principal:
        if not self.guest_enabled:
            raise AuthenticationError("guest sign-in is only enabled in demo mode")
        return GUEST
