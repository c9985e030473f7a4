"""Links to the attachments of inbound emails: presigned GETs of the mail bucket, made
without a call to AWS and only for an attachment the caller's tenant's entry names."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from crm_core.records.case import AttachmentLink

ATTACHMENT_LINK_SECONDS = 300


class AttachmentLinks:
    def __init__(self, s3: Callable[[], Any], bucket: str | None) -> None:
        self._make_s3 = s3
        self._s3: Any = None
        self.bucket = bucket

    def link(self, attachment: Mapping[str, Any]) -> AttachmentLink:
        if self.bucket is None:
            raise RuntimeError("MAIL_BUCKET is not set: this stage keeps no attachments")
        if self._s3 is None:
            self._s3 = self._make_s3()  # on the first download, not at cold start
        filename = str(attachment["filename"])
        url = self._s3.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": attachment["s3_key"],
                "ResponseContentDisposition": (
                    f"attachment; filename*=UTF-8''{quote(filename, safe='')}"
                ),
                "ResponseContentType": str(attachment["content_type"]),
            },
            ExpiresIn=ATTACHMENT_LINK_SECONDS,
        )
        expires = datetime.now(UTC) + timedelta(seconds=ATTACHMENT_LINK_SECONDS)
        return AttachmentLink(
            filename=filename,
            content_type=str(attachment["content_type"]),
            size=int(attachment["size"]),
            url=url,
            expires_at=expires.isoformat(timespec="seconds").replace("+00:00", "Z"),
        )
