"""Structural PDF/A-3 + Factur-X checks of a PDF, with pikepdf (not a full veraPDF validation).

Written for this project (tests only); run as `python -m tests.pdfa_check FILE.pdf`.

    python check_pdf.py invoice.pdf [more.pdf …]     # exit 1 if any check fails

Checks, each reported ok / FAIL (and a few informative notes):

- header: ``%PDF-1.n`` with n ≥ 4 (PDF/A-3 allows 1.0–1.7; 1.7 preferred);
- no encryption; trailer ``/ID`` present (PDF/A requires the file identifier);
- fonts: every font used by any page, form XObject or annotation appearance is embedded, the
  program of TrueType fonts as ``/FontFile2`` (Type0 fonts: in their descendant CIDFont, which
  for CIDFontType2 also needs ``/CIDToGIDMap``); ``/ToUnicode`` noted (needed for level U only);
- OutputIntent: the catalog's ``/OutputIntents`` has one with ``/S /GTS_PDFA1`` and a
  ``/DestOutputProfile`` ICC stream whose header says ``acsp``, an RGB profile with ``/N 3``;
- XMP: catalog ``/Metadata`` with ``pdfaid:part`` = 3 and ``pdfaid:conformance`` = B, the
  Factur-X PDF/A extension schema (namespace urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#)
  declared and its fx:DocumentType / DocumentFileName / Version / ConformanceLevel present;
- Info vs XMP: when an Info dictionary exists, Title, Author, Subject, Keywords, Creator,
  Producer, CreationDate, ModDate each have the equivalent XMP value (PDF/A: equivalent);
- the attachment: ``factur-x.xml`` in the ``/EmbeddedFiles`` name tree, its file
  specification with ``/AFRelationship`` (Data, Alternative or Source), ``/F`` and ``/UF``, the
  embedded stream with ``/Subtype /text/xml`` and ``/Params /ModDate``, and the same file
  specification listed in the catalog's ``/AF``;
- the Factur-X XML extractable with ``facturx.get_xml_from_pdf`` (XSD-checked), equal to the
  embedded bytes; with ``--schematron`` also run through en16931.validate.
"""

from __future__ import annotations

import io
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pikepdf
from pikepdf import Dictionary, Stream

FX_NS = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
PDFAID_NS = "http://www.aiim.org/pdfa/ns/id/"
FACTURX_FILENAME = "factur-x.xml"
XMP_OF_INFO = {  # Info key → XMP property (ISO 19005-3 via 19005-2 6.6.3)
    "/Title": "dc:title", "/Author": "dc:creator", "/Subject": "dc:description",
    "/Keywords": "pdf:Keywords", "/Creator": "xmp:CreatorTool", "/Producer": "pdf:Producer",
    "/CreationDate": "xmp:CreateDate", "/ModDate": "xmp:ModifyDate",
}


@dataclass
class Report:
    path: str
    results: list[tuple[str, bool, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append((name, bool(ok), detail))
        return bool(ok)

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.results)

    def render(self) -> str:
        lines = [f"== {self.path}: {'PASS' if self.ok else 'FAIL'}"]
        for name, ok, detail in self.results:
            lines.append(f"  {'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""))
        lines += [f"  note {note}" for note in self.notes]
        return "\n".join(lines)


# Fonts ---------------------------------------------------------------------------------------

def _fonts_in(resources, seen: set, found: dict) -> None:
    """Walk a resource dictionary: its fonts, and the resources of its form XObjects."""
    if not isinstance(resources, Dictionary):
        return
    key = resources.objgen if resources.is_indirect else id(resources)
    if key in seen:
        return
    seen.add(key)
    fonts = resources.get("/Font")
    if isinstance(fonts, Dictionary):
        for name, font in fonts.items():
            found[font.objgen if font.is_indirect else (name, id(font))] = font
            if font.get("/Subtype") == "/Type3":
                _fonts_in(font.get("/Resources"), seen, found)
    xobjects = resources.get("/XObject")
    if isinstance(xobjects, Dictionary):
        for xobject in xobjects.values():
            if isinstance(xobject, Stream) and xobject.get("/Subtype") == "/Form":
                _fonts_in(xobject.get("/Resources"), seen, found)


def _all_fonts(pdf: pikepdf.Pdf) -> dict:
    seen: set = set()
    found: dict = {}
    for page in pdf.pages:
        _fonts_in(page.obj.get("/Resources"), seen, found)
        for annot in page.obj.get("/Annots", []):
            appearance = annot.get("/AP")
            if isinstance(appearance, Dictionary):
                for state in appearance.values():
                    streams = [state] if isinstance(state, Stream) else (
                        list(state.values()) if isinstance(state, Dictionary) else [])
                    for stream in streams:
                        if isinstance(stream, Stream):
                            _fonts_in(stream.get("/Resources"), seen, found)
    return found


def check_fonts(pdf: pikepdf.Pdf, report: Report) -> None:
    fonts = _all_fonts(pdf)
    report.check("fonts used", bool(fonts), f"{len(fonts)} font(s)")
    for font in fonts.values():
        base = str(font.get("/BaseFont", "?"))
        subtype = str(font.get("/Subtype"))
        if subtype == "/Type3":
            report.check(f"font {base}", True, "Type3 (glyphs are content streams)")
            continue
        descendant = font
        if subtype == "/Type0":
            descendant = font.DescendantFonts[0]
            if descendant.get("/Subtype") == "/CIDFontType2":
                report.check(f"font {base} CIDToGIDMap", "/CIDToGIDMap" in descendant,
                             "CIDFontType2 needs /CIDToGIDMap")
        descriptor = descendant.get("/FontDescriptor")
        if descriptor is None:
            report.check(f"font {base} embedded", False, f"{subtype} without FontDescriptor "
                                                         "(a standard 14 font, not embedded)")
            continue
        programs = [k for k in ("/FontFile", "/FontFile2", "/FontFile3") if k in descriptor]
        truetype = subtype == "/TrueType" or descendant.get("/Subtype") == "/CIDFontType2"
        if truetype:
            report.check(f"font {base} embedded", "/FontFile2" in descriptor,
                         f"{subtype}, program in {', '.join(programs) or 'nothing'}")
        else:
            report.check(f"font {base} embedded", bool(programs),
                         f"{subtype}, program in {', '.join(programs) or 'nothing'}")
        if "/ToUnicode" not in font:
            report.notes.append(f"font {base} has no /ToUnicode (fine for PDF/A-3B, not 3U)")


# OutputIntent ------------------------------------------------------------------------------

def check_output_intent(pdf: pikepdf.Pdf, report: Report) -> None:
    intents = pdf.Root.get("/OutputIntents", [])
    pdfa = [oi for oi in intents if oi.get("/S") == "/GTS_PDFA1"]
    if not report.check("OutputIntent /GTS_PDFA1", len(pdfa) >= 1,
                        f"{len(intents)} output intent(s)"):
        return
    intent = pdfa[0]
    profile = intent.get("/DestOutputProfile")
    if not report.check("OutputIntent ICC stream", isinstance(profile, Stream),
                        "DestOutputProfile"):
        return
    data = profile.read_bytes()
    space = data[16:20].decode("latin-1", "replace")
    report.check("ICC profile header", len(data) > 128 and data[36:40] == b"acsp",
                 f"{len(data)} bytes, colour space {space!r}, "
                 f"identifier {str(intent.get('/OutputConditionIdentifier', ''))!r}")
    report.check("ICC profile /N matches", int(profile.get("/N", 0)) ==
                 {"RGB ": 3, "GRAY": 1, "CMYK": 4}.get(space, -1), f"/N {profile.get('/N')}")
    if len({str(oi.get("/DestOutputProfile").objgen) for oi in intents
            if oi.get("/DestOutputProfile") is not None}) > 1:
        report.check("one DestOutputProfile", False, "PDF/A: all output intents share one")


# XMP and Info --------------------------------------------------------------------------------

def _pdf_date(value: str) -> datetime | None:
    match = re.match(r"D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?([Z+-])?(\d{2})?'?(\d{2})?",
                     value)
    if not match:
        return None
    y, mo, d, h, mi, s, sign, tzh, tzm = match.groups()
    moment = datetime(int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0), int(s or 0))
    if sign in ("+", "-"):
        from datetime import timedelta
        offset = timedelta(hours=int(tzh or 0), minutes=int(tzm or 0))
        moment = (moment - offset if sign == "+" else moment + offset)
    return moment.replace(tzinfo=timezone.utc)


def _xmp_date(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(
        timezone.utc)


def check_xmp(pdf: pikepdf.Pdf, report: Report) -> None:
    stream = pdf.Root.get("/Metadata")
    if not report.check("XMP /Metadata stream", isinstance(stream, Stream)):
        return
    if "/Filter" in stream:
        report.notes.append("XMP stream is compressed (allowed in PDF/A-2/3, not PDF/A-1; "
                            "keep it uncompressed if the PDF is to be signed)")
    raw = stream.read_bytes()
    report.check("XMP is UTF-8 with an xpacket", raw.lstrip().startswith(b"<?xpacket")
                 and raw.decode("utf-8", "strict") is not None)
    meta = pdf.open_metadata()
    report.check("XMP pdfaid:part = 3", str(meta.get("pdfaid:part")) == "3",
                 repr(meta.get("pdfaid:part")))
    report.check("XMP pdfaid:conformance = B", str(meta.get("pdfaid:conformance")) == "B",
                 repr(meta.get("pdfaid:conformance")))
    text = raw.decode("utf-8", "replace")
    report.check("XMP Factur-X extension schema",
                 f"<pdfaSchema:namespaceURI>{FX_NS}</pdfaSchema:namespaceURI>" in text
                 and "<pdfaSchema:prefix>fx</pdfaSchema:prefix>" in text)
    from lxml import etree

    root = etree.fromstring(raw[raw.index(b"<x:xmpmeta"):raw.rindex(b"</x:xmpmeta>") + 12]
                            if b"<x:xmpmeta" in raw else raw)
    fx = {local: root.findtext(f".//{{{FX_NS}}}{local}") for local in
          ("DocumentType", "DocumentFileName", "Version", "ConformanceLevel")}
    for attr in ("DocumentType", "DocumentFileName", "Version", "ConformanceLevel"):
        if not fx[attr]:  # may be written as attributes of rdf:Description
            for desc in root.iter("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}Description"):
                fx[attr] = fx[attr] or desc.get(f"{{{FX_NS}}}{attr}")
    report.check("XMP fx: properties", fx["DocumentType"] == "INVOICE"
                 and fx["DocumentFileName"] == FACTURX_FILENAME and bool(fx["Version"])
                 and bool(fx["ConformanceLevel"]),
                 ", ".join(f"{k}={v}" for k, v in fx.items()))

    info = pdf.trailer.get("/Info")
    if not isinstance(info, Dictionary) or not len(info.keys()):
        report.notes.append("no Info dictionary: the XMP is the only metadata (fine)")
        return
    for key, prop in XMP_OF_INFO.items():
        if key not in info:
            continue
        value = str(info[key])
        xmp_value = meta.get(prop)
        if key in ("/CreationDate", "/ModDate"):
            same = (xmp_value is not None and _pdf_date(value) is not None
                    and _pdf_date(value) == _xmp_date(str(xmp_value)))
        elif key == "/Author":
            same = xmp_value is not None and value == "; ".join(xmp_value) \
                if isinstance(xmp_value, list) else value == (xmp_value or None)
        elif key == "/Keywords" and value == "" and xmp_value is None:
            same = False
        else:
            same = xmp_value is not None and str(xmp_value) == value
        report.check(f"Info {key} = XMP {prop}", same, f"{value!r} / {xmp_value!r}")


# Attachment ----------------------------------------------------------------------------------

def _name_tree(node, out: dict) -> None:
    names = node.get("/Names")
    if names is not None:
        for i in range(0, len(names), 2):
            out[str(names[i])] = names[i + 1]
    for kid in node.get("/Kids", []):
        _name_tree(kid, out)


def check_attachment(pdf: pikepdf.Pdf, data: bytes, report: Report, schematron: bool) -> None:
    files: dict = {}
    tree = pdf.Root.get("/Names", {}).get("/EmbeddedFiles") if "/Names" in pdf.Root else None
    if tree is not None:
        _name_tree(tree, files)
    if not report.check("EmbeddedFiles has factur-x.xml", FACTURX_FILENAME in files,
                        ", ".join(files) or "no embedded file"):
        return
    spec = files[FACTURX_FILENAME]
    relationship = str(spec.get("/AFRelationship", ""))
    report.check("filespec /AFRelationship", relationship in ("/Data", "/Alternative",
                                                              "/Source"), relationship or "none")
    report.check("filespec /F and /UF", str(spec.get("/F", "")) == FACTURX_FILENAME
                 and str(spec.get("/UF", "")) == FACTURX_FILENAME,
                 f"/F {spec.get('/F')!s} /UF {spec.get('/UF')!s}")
    embedded = spec.get("/EF", {}).get("/F")
    if not report.check("embedded file stream", isinstance(embedded, Stream)):
        return
    report.check("embedded /Subtype text/xml", str(embedded.get("/Subtype", "")) in
                 ("/text/xml", "/text#2Fxml"), str(embedded.get("/Subtype", "none")))
    params = embedded.get("/Params", {})
    report.check("embedded /Params /ModDate", "/ModDate" in params,
                 str(params.get("/ModDate", "none")))
    af = pdf.Root.get("/AF", [])
    listed = any(item.objgen == spec.objgen for item in af) if spec.is_indirect else False
    report.check("filespec listed in catalog /AF", listed, f"/AF has {len(af)} entr(y/ies)")
    xml_embedded = embedded.read_bytes()

    from facturx import get_xml_from_pdf

    try:
        name, xml = get_xml_from_pdf(data, check_xsd=True)
    except Exception as err:  # noqa: BLE001 - report it
        report.check("Factur-X XML extractable (facturx, XSD)", False, repr(err))
        return
    report.check("Factur-X XML extractable (facturx, XSD)", name == FACTURX_FILENAME
                 and xml == xml_embedded, f"{name}, {len(xml)} bytes")
    if schematron:
        sys.path.insert(0, str(Path(__file__).parent))
        from tests.en16931 import fatal, validate

        problems = fatal(validate(xml))
        report.check("EN 16931 schematron (offline)", not problems,
                     ", ".join(sorted({p["id"] for p in problems})) or "no fatal assertion")


# Whole file ----------------------------------------------------------------------------------

def check(path: str | Path | bytes, *, schematron: bool = False) -> Report:
    """Every check on a PDF file (a path) or its bytes."""
    data = path if isinstance(path, bytes) else Path(path).read_bytes()
    report = Report("<bytes>" if isinstance(path, bytes) else str(path))
    header = re.match(rb"%PDF-(\d)\.(\d)", data[:16])
    version = f"{header.group(1).decode()}.{header.group(2).decode()}" if header else "?"
    report.check("header %PDF-1.n, n ≥ 4", bool(header) and header.group(1) == b"1"
                 and int(header.group(2)) >= 4, f"%PDF-{version}")
    if header and header.group(2) != b"7":
        report.notes.append(f"header is %PDF-{version} (valid for PDF/A-3; 1.7 preferred)")
    with pikepdf.open(io.BytesIO(data)) as pdf:
        report.check("not encrypted", not pdf.is_encrypted)
        report.check("trailer /ID", "/ID" in pdf.trailer and len(pdf.trailer.ID) == 2)
        if pdf.pdf_version != version:
            report.notes.append(f"catalog /Version {pdf.pdf_version} vs header {version}")
        check_fonts(pdf, report)
        check_output_intent(pdf, report)
        check_xmp(pdf, report)
        check_attachment(pdf, data, report, schematron)
        for page in pdf.pages:
            if "/JS" in repr(page.obj.get("/AA", "")) or "/JavaScript" in pdf.Root.get(
                    "/Names", Dictionary()):
                report.check("no JavaScript", False)
                break
    return report


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdf", nargs="+")
    parser.add_argument("--schematron", action="store_true",
                        help="also run the EN 16931 schematron on the extracted XML")
    args = parser.parse_args(argv)
    reports = [check(path, schematron=args.schematron) for path in args.pdf]
    for report in reports:
        print(report.render())
    return 0 if all(report.ok for report in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
