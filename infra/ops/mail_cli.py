"""`crm mail receive FILE.eml`: deliver an email to the support queues as SES would.

crm mail receive FILE.eml [--to ADDRESS ...] [--spam] [--virus] [--stage S]

The same path as a message SES receives: the raw bytes are stored in the stage's mail
bucket at `inbound/<id>` (the receipt rule's S3 action), then inbound_mail is invoked with
an SES receipt naming that id, its recipients (`--to`, else the message's To and Cc) and
the verdicts (PASS, or FAIL for `--spam` / `--virus`, to try a refusal). The function's
answer (opened, threaded, refused...) is printed; the exit code is 0 when the message
reached a case (opened, threaded, follow_up, duplicate) and 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from infra.ops.stage import EventsError, stage_of

REACHED_A_CASE = frozenset({"opened", "threaded", "follow_up", "duplicate"})


def ses_receipt_event(
    message_id: str, recipients: list[str], *, spam: bool = False, virus: bool = False
) -> dict[str, Any]:
    """The event SES's Lambda action gives (its `mail` part reduced to what is read)."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def verdict(failed: bool) -> dict[str, str]:
        return {"status": "FAIL" if failed else "PASS"}

    return {
        "Records": [
            {
                "eventSource": "aws:ses",
                "eventVersion": "1.0",
                "ses": {
                    "mail": {
                        "timestamp": now,
                        "messageId": message_id,
                        "destination": recipients,
                    },
                    "receipt": {
                        "timestamp": now,
                        "recipients": recipients,
                        "spamVerdict": verdict(spam),
                        "virusVerdict": verdict(virus),
                        "spfVerdict": verdict(False),
                        "dkimVerdict": verdict(False),
                        "dmarcVerdict": verdict(False),
                        "action": {"type": "Lambda", "invocationType": "Event"},
                    },
                },
            }
        ]
    }


def recipients_of(raw: bytes) -> list[str]:
    headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
    values = [str(v) for name in ("To", "Cc") for v in headers.get_all(name) or []]
    return [address for _, address in getaddresses(values) if address]


def cmd_receive(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
        recipients = args.to or recipients_of(raw)
        if not recipients:
            raise EventsError("the message names no recipient: give --to ADDRESS")
        stage = stage_of(args)
        bucket = stage.output("MailBucketName")
        function = stage.output("InboundMailFunctionName")
        message_id = f"crm-{uuid.uuid4().hex}"
        stage.client("s3").put_object(Bucket=bucket, Key=f"inbound/{message_id}", Body=raw)
        event = ses_receipt_event(message_id, recipients, spam=args.spam, virus=args.virus)
        answer = stage.client("lambda").invoke(
            FunctionName=function, Payload=json.dumps(event).encode()
        )
        payload = json.loads(answer["Payload"].read() or b"null")
    except (EventsError, OSError) as error:
        print(f"crm mail: {error}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as error:
        print(f"crm mail: {error}", file=sys.stderr)
        return 2
    print(json.dumps(payload, indent=2))
    if answer.get("FunctionError") or not isinstance(payload, list):
        return 1
    return 0 if all(r.get("outcome") in REACHED_A_CASE for r in payload) else 1


def register(commands: Any) -> None:
    """`crm mail ...` under the `crm` command's subparsers."""
    mail = commands.add_parser("mail", help="email to case: deliver a message as SES would")
    actions = mail.add_subparsers(dest="action", required=True)
    receive = actions.add_parser("receive", help="deliver an .eml file to the support queues")
    receive.add_argument("file", help="an RFC 5322 message (.eml), or - for stdin")
    receive.add_argument(
        "--to", action="append", help="a recipient (repeatable; default: its To and Cc)"
    )
    receive.add_argument("--spam", action="store_true", help="as SES's spam verdict FAIL")
    receive.add_argument("--virus", action="store_true", help="as SES's virus verdict FAIL")
    receive.add_argument("--stage", help="a deployed stage instead of the local cloud")
    receive.set_defaults(run=cmd_receive)
