"""The content library: media stored by hash, text-to-speech, approval with Ed25519 signatures.

The hub opens one :class:`ContentLibrary` as ``hub.content``. The dispatch path asks it for
:meth:`~ContentLibrary.playable` (or :meth:`~ContentLibrary.media_for`), which refuses, with a
:class:`~ttcs.core.errors.ContentNotDispatchable`, anything not approved or altered since.
"""

from .approvers import Approver, ApproverBook
from .library import ContentDraft, ContentLibrary, Decision, Playable, approval_statement
from .media import LocalMediaStore, MediaStore, StoredMedia
from .speech import Rendered, VoiceChoice
from .tts import PROVINCE_REGIONS, EspeakEngine, Region, TtsEngine, Voice, parse_wav
from .urls import MediaUrlSigner

__all__ = [
    "PROVINCE_REGIONS", "Approver", "ApproverBook", "ContentDraft", "ContentLibrary", "Decision",
    "EspeakEngine", "LocalMediaStore", "MediaStore", "MediaUrlSigner", "Playable", "Region",
    "Rendered", "StoredMedia", "TtsEngine", "Voice", "VoiceChoice", "approval_statement",
    "parse_wav",
]
