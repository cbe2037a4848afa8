"""One function per use case, one module per resource. Routes and the CLI call these; they
hold no HTTP or argparse. A write, its audit entry and the events it causes commit in one
transaction through the outbox."""

from lookout_api.handlers.api_keys import create_api_key, list_api_keys, revoke_api_key
from lookout_api.handlers.audit import list_audit
from lookout_api.handlers.auth import authenticate, ensure_current, login
from lookout_api.handlers.bulk import BulkItem, BulkResult, bulk_upsert
from lookout_api.handlers.counts import Counts, counts
from lookout_api.handlers.dashboard import dashboard
from lookout_api.handlers.frames import (
    SignedUrls,
    check_signed,
    latest_frame,
    signed_urls_for,
)
from lookout_api.handlers.frames import encoded as encoded_frame
from lookout_api.handlers.quotas import get_quota_usage, set_quotas
from lookout_api.handlers.snapshots import (
    get_job,
    latest_snapshot_file,
    list_snapshots,
    request_snapshot,
    snapshot_file,
)
from lookout_api.handlers.stream_list import StreamList, list_streams
from lookout_api.handlers.streams import (
    create_stream,
    delete_stream,
    get_stream,
    update_stream,
)
from lookout_api.handlers.tenancy import (
    create_tenant,
    create_user,
    current_user,
    delete_user,
    list_users,
)

__all__ = [
    "BulkItem",
    "BulkResult",
    "Counts",
    "SignedUrls",
    "StreamList",
    "authenticate",
    "bulk_upsert",
    "check_signed",
    "counts",
    "create_api_key",
    "create_stream",
    "create_tenant",
    "create_user",
    "current_user",
    "dashboard",
    "delete_stream",
    "delete_user",
    "encoded_frame",
    "ensure_current",
    "get_job",
    "get_quota_usage",
    "get_stream",
    "latest_frame",
    "latest_snapshot_file",
    "list_api_keys",
    "list_audit",
    "list_snapshots",
    "list_streams",
    "list_users",
    "login",
    "request_snapshot",
    "revoke_api_key",
    "set_quotas",
    "signed_urls_for",
    "snapshot_file",
    "update_stream",
]
