"""API keys: shown once when created, stored only as a SHA-256 hash."""

import hashlib
import secrets
from enum import StrEnum

from pydantic import BaseModel

KEY_PREFIX = "fpg_"


class Role(StrEnum):
    SUBMITTER = "submitter"  # process images, read its own jobs and batches
    AUDITOR = "auditor"  # read, verify and export the audit trail


class ApiKey(BaseModel):
    id: str
    name: str
    role: Role
    created_at: str
    revoked_at: str | None = None


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(6)


def secret_sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
