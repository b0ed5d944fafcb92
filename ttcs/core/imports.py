"""Bulk input: area and device lists from YAML/CSV files, and the official area list.

The official list comes from the ``vietnam-provinces`` package (34 provinces and cities,
3,321 communes, wards and special zones since 1 July 2025), keyed by the official codes.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..schemas import Area, AreaType, DeviceSpec
from ..schemas.errors import explain
from .errors import InvalidInput


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error on one line: what is wrong and where (its message quotes the file)."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem


def official_areas(province_code: int | str) -> list[Area]:
    """The province and all its communes/wards/special zones, with their official codes."""
    import vietnam_provinces as vp

    try:
        province = vp.Province.from_code(vp.ProvinceCode(int(province_code)))
    except ValueError as exc:
        codes = ", ".join(str(int(p.code)) for p in vp.Province.iter_all())
        raise InvalidInput(f"{province_code} is not an official province code "
                           f"(known: {codes})") from exc
    division = vp.VietNamDivisionType
    ptype = (AreaType.MUNICIPALITY if province.division_type is division.THANH_PHO_TRUNG_UONG
             else AreaType.PROVINCE)
    areas = [Area(code=str(int(province.code)), name=province.name, type=ptype)]
    kinds = {division.PHUONG: AreaType.WARD, division.XA: AreaType.COMMUNE,
             division.DAC_KHU: AreaType.SPECIAL_ZONE}
    for ward in sorted(vp.Ward.iter_by_province(province.code), key=lambda w: int(w.code)):
        areas.append(Area(code=str(int(ward.code)), name=ward.name,
                          type=kinds[ward.division_type], parent_code=areas[0].code))
    return areas


def read_area_file(path: Path) -> list[Area]:
    """Areas from a YAML list (or ``{areas: [...]}``) or a CSV with a header row
    ``code,name,type,parent_code``. Every bad row is reported with its number."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc
    rows = _rows(path, text)
    areas: list[Area] = []
    problems: list[str] = []
    for number, row in enumerate(rows, start=1):
        try:
            clean = {k: (v if v not in ("", None) else None) for k, v in dict(row).items()}
            areas.append(Area.model_validate(clean))
        except (ValidationError, TypeError, ValueError) as exc:
            why = explain(exc) if isinstance(exc, ValidationError) else str(exc)
            problems.append(f"row {number}: {why}")
    if problems:
        raise InvalidInput(f"{path}: {len(problems)} bad row(s): " + "; ".join(problems[:10]))
    return areas


def _rows(path: Path, text: str) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".csv":
        return list(csv.DictReader(io.StringIO(text)))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path} is not valid YAML: {yaml_problem(exc)}") from exc
    if isinstance(data, dict) and "areas" in data:
        data = data["areas"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise InvalidInput(f"{path}: expected a list of areas (code, name, type, parent_code)")
    return data


def read_device_file(path: Path) -> list[DeviceSpec | Exception]:
    """Device specs from YAML (list of DeviceSpec mappings) or CSV.

    CSV columns: ``plugin, kind, area_code, village_code, name, parent_id, groups`` (groups
    separated by ``;``), ``lat, lon, address``, and one ``config.KEY`` column per config key.
    A row that does not validate becomes an exception in the list (reported per row).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc
    if path.suffix.lower() == ".csv":
        raw = [_csv_device(r) for r in csv.DictReader(io.StringIO(text))]
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{path} is not valid YAML: {yaml_problem(exc)}") from exc
        if isinstance(data, dict) and "devices" in data:
            data = data["devices"]
        if not isinstance(data, list):
            raise InvalidInput(f"{path}: expected a list of devices")
        raw = data
    specs: list[DeviceSpec | Exception] = []
    for row in raw:
        try:
            specs.append(DeviceSpec.model_validate(row))
        except ValidationError as exc:
            specs.append(InvalidInput(explain(exc)))
        except (TypeError, ValueError) as exc:
            specs.append(InvalidInput(str(exc)))
    return specs


def _csv_device(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    config: dict[str, str] = {}
    location: dict[str, str] = {}
    for raw_key, value in row.items():
        if raw_key is None or value in (None, ""):
            continue
        key = raw_key.strip()
        if key.startswith("config."):
            config[key.removeprefix("config.")] = value
        elif key in ("lat", "lon", "address"):
            location[key] = value
        elif key == "groups":
            out["groups"] = [g.strip() for g in value.split(";") if g.strip()]
        else:
            out[key] = value
    if config:
        out["config"] = config
    if location:
        out["location"] = location
    return out
