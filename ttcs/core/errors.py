"""The hub's own exceptions. Adapters translate every library error into one of these.

Grouped by what the caller should do about them: device errors carry ``retryable``, so the
dispatcher and the poller decide by type, never by parsing messages.
"""

from __future__ import annotations


class TTCSError(Exception):
    """Base of every error the hub raises on purpose."""


# -- device errors: raised by drivers and adapters -------------------------------------------


class DeviceError(TTCSError):
    """Something went wrong talking to a device."""

    retryable = False


class DeviceUnreachable(DeviceError):
    """No connection to the device (refused, reset, no route, broker down)."""

    retryable = True


class DeviceTimeout(DeviceError):
    """The device did not answer in time."""

    retryable = True


class DeviceNotReady(DeviceError):
    """The device answered that it is busy or starting; try again later."""

    retryable = True


class AuthFailed(DeviceError):
    """The device (or its broker) refused our credentials; retrying will not help."""


class ProtocolError(DeviceError):
    """The device answered something we cannot understand (garbage, wrong shape)."""

    retryable = True


class CommandRejected(DeviceError):
    """The device understood the command and refused it."""

    def __init__(self, message: str, code: str = "rejected") -> None:
        super().__init__(message)
        self.code = code


class UnsupportedCommand(DeviceError):
    """The device lacks the capability the command needs (checked before the driver)."""


class PermanentDeviceError(DeviceError):
    """A failure that will not go away by retrying (wrong model, bad configuration)."""


# -- plugin errors ---------------------------------------------------------------------------


class PluginError(TTCSError):
    """A plugin could not be loaded or used."""


class PluginRefused(PluginError):
    """The plugin failed validation (import error, bad manifest, SDK mismatch)."""


class UnknownPlugin(PluginError):
    """No loaded plugin has this id."""


# -- registry and input errors ---------------------------------------------------------------


class RegistryError(TTCSError):
    """A registry operation cannot be done as asked."""


class NotFound(RegistryError):
    """The named area, device, group or item does not exist."""


class Conflict(RegistryError):
    """The operation clashes with what exists (a duplicate serial, a cycle in the tree)."""


# -- content errors: the library, approval and the dispatch-time check -------------------------


class ContentError(TTCSError):
    """A content operation cannot be done as asked."""


class InvalidTransition(ContentError):
    """The content item is not in a state that allows this step (e.g. approving a draft)."""


class ApprovalDenied(ContentError):
    """The approver has no rights over this item (wrong issuing level or outside their area)."""


class TtsError(ContentError):
    """Text-to-speech failed (engine missing, crashed, gave no WAV, or has no such voice)."""


class ContentNotDispatchable(ContentError):
    """The item must not go to any device. The dispatch path refuses on any subclass."""


class ContentNotApproved(ContentNotDispatchable):
    """The item is not (or no longer) approved."""


class ContentAltered(ContentNotDispatchable):
    """The item's bytes or metadata differ from what was approved, or the signature is bad."""


class MediaMissing(ContentNotDispatchable):
    """The item's media file is not in the media store."""


class InvalidInput(TTCSError):
    """Input from a person, file or API failed validation; the message says what to fix."""


class ConfigError(TTCSError):
    """The hub's own configuration is wrong."""


# -- access control: the northbound API and its accounts --------------------------------------


class AccessError(TTCSError):
    """A request was refused by access control."""


class NotAuthenticated(AccessError):
    """No valid credentials: a missing, unknown, expired or revoked token, or a bad password."""


class AccessDenied(AccessError):
    """The caller is known but their role or area scope does not allow this."""


class RateLimited(AccessError):
    """Too many attempts; ``retry_after`` says in how many seconds to try again."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
