"""`juju-local integrate smtp`: a local SMTP server, and the smtp-integrator side of it.

The server (aiosmtpd, from `.cache/servers-venv`) runs as `nobody` on a free port of 127.0.0.1
(see `venv_server`); it requires a login, and keeps every mail it accepts in the Maildir
`<state>/databases/smtp/mail/` (`new/` holds one file per mail).

The provider's side, as smtp-integrator publishes it: `host`, `port`, `user`, `auth_type: plain`,
`transport_security: none` (it listens on 127.0.0.1 only), `domain` and `skip_ssl_verify`, with
the password in a secret it owns and grants to us (`password_id`, content `password`).
"""

from __future__ import annotations

import mailbox
import os
from typing import TYPE_CHECKING

from juju_local import provider_relations, venv_server
from juju_local.databases import NOBODY, random_password

if TYPE_CHECKING:
    from juju_local.deployment import Deployment

DOMAIN = "flask-k8s.local"


class SmtpServer(venv_server.VenvServer):
    """aiosmtpd, requiring the login written in `login`."""

    kind = endpoint = interface = "smtp"
    app = "smtp-integrator"
    user = "flask-k8s-mailer"

    def initialise(self) -> None:
        """The data directory, and the one login the server accepts (a new password)."""
        super().initialise()
        login = self.dir / "login"
        login.write_text(f"{self.user}\n{random_password()}\n")
        login.chmod(0o600)
        if os.getuid() == 0:
            os.chown(login, NOBODY, NOBODY)

    @property
    def password(self) -> str:
        """The password the server accepts."""
        return (self.dir / "login").read_text().splitlines()[1]

    def mails(self) -> list[mailbox.MaildirMessage]:
        """Every mail received so far."""
        return list(mailbox.Maildir(self.dir / "mail", create=False))


def answer(deployment: Deployment, server: SmtpServer, relation_id: int) -> None:
    """Publish the relay and the login, the password in a secret granted to us."""
    model = deployment.model
    password = {"password": server.password}
    secret_id = provider_relations.grant_secret(
        model, server.app, "password-secret", password, relation_id
    )
    published = {
        "host": "127.0.0.1",
        "port": str(server.port),
        "user": server.user,
        "password_id": secret_id,
        "auth_type": "plain",
        "transport_security": "none",
        "domain": DOMAIN,
        "skip_ssl_verify": "False",
    }
    model.set_remote_app_data(relation_id, published)
