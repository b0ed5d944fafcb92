"""Device configuration of RadiVina transmitters and their receiver clusters."""

from __future__ import annotations

import unicodedata
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from ...adapters.snmp import AuthProtocol, PrivProtocol, SnmpCredentials, SnmpTarget, SnmpVersion
from ...core.driver import DriverConfig
from ..audio_decoder import DecoderFields


class TransmitterConfig(DecoderFields, DriverConfig):
    """How to reach one transmitter (SNMP) and the decoder that feeds it (HTTP)."""

    host: str = Field(min_length=1, description="the transmitter's address")
    port: int = Field(default=161, ge=1, le=65535, description="SNMP agent UDP port")
    snmp_version: Literal["2c", "3"] = "2c"
    community: SecretStr | None = Field(default=None, description="SNMPv2c community for "
                                        "reading (usually the read-only one)")
    write_community: SecretStr | None = Field(default=None, description="SNMPv2c community "
                                              "for SETs (RF, zones, tuning); default: "
                                              "'community'")
    user: str | None = Field(default=None, description="SNMPv3 USM user")
    auth_protocol: AuthProtocol = AuthProtocol.SHA
    auth_key: SecretStr | None = Field(default=None, description="SNMPv3 auth pass phrase")
    priv_protocol: PrivProtocol = PrivProtocol.AES
    priv_key: SecretStr | None = Field(default=None, description="SNMPv3 privacy pass phrase; "
                                       "without it the user is authNoPriv")
    timeout: float | None = Field(default=None, gt=0, le=30, description="seconds per SNMP "
                                  "try (default 1.5)")
    retries: int = Field(default=1, ge=0, le=5, description="SNMP retransmissions per request")
    poll_interval: float | None = Field(default=None, gt=0, description="seconds between "
                                        "status polls (default 30)")
    rf_on_for_play: bool = Field(default=True, description="switch the carrier on for a play "
                                 "when it is off (stations on air only for sessions)")
    release_zones_after_play: bool = Field(default=True, description="switch the receiver "
                                           "zones a play switched on back off when it ends "
                                           "(so receivers do not stay open between "
                                           "bulletins)")
    rds_ps: str | None = Field(default=None, max_length=8, description="RDS station name "
                               "to keep on the transmitter (diacritics are dropped: RDS "
                               "cannot show them)")
    rds_rt: str | None = Field(default=None, max_length=64, description="RDS radiotext to "
                               "keep on the transmitter")

    @field_validator("rds_ps", "rds_rt")
    @classmethod
    def _rds(cls, value: str | None) -> str | None:
        return None if value is None else rds_text(value)

    @model_validator(mode="after")
    def _credentials(self) -> TransmitterConfig:
        self.credentials(write=False)  # raises ValueError with what is missing
        return self

    def credentials(self, *, write: bool) -> SnmpCredentials:
        if self.snmp_version == "2c":
            community = (self.write_community or self.community) if write else self.community
            if community is None:
                raise ValueError("SNMPv2c needs 'community'")
            return SnmpCredentials(SnmpVersion.V2C, community=community)
        if not self.user or self.auth_key is None:
            raise ValueError("SNMPv3 needs 'user' and 'auth_key' (and 'priv_key' for authPriv)")
        return SnmpCredentials(
            SnmpVersion.V3, user=self.user, auth_protocol=self.auth_protocol,
            auth_key=self.auth_key,
            priv_protocol=self.priv_protocol if self.priv_key else PrivProtocol.NONE,
            priv_key=self.priv_key)

    def target(self, *, write: bool = False) -> SnmpTarget:
        return SnmpTarget(self.host, self.credentials(write=write), port=self.port,
                          timeout=self.timeout or 1.5, retries=self.retries)


class ReceiverConfig(DriverConfig):
    """A receiver cluster: which row of its transmitter's zone table it is."""

    zone: int = Field(ge=1, le=64, description="zone index in the transmitter's zone table")
    poll_interval: float | None = Field(default=None, gt=0, description="seconds between "
                                        "status polls (default 60)")


def rds_text(value: str) -> str:
    """Text the RDS basic character set can carry: Vietnamese without its diacritics."""
    value = value.replace("Đ", "D").replace("đ", "d")
    plain = "".join(c for c in unicodedata.normalize("NFD", value)
                    if not unicodedata.combining(c))
    return "".join(c if " " <= c <= "~" else "?" for c in plain)


__all__ = ["ReceiverConfig", "TransmitterConfig", "rds_text"]
