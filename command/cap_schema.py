"""The OASIS CAP 1.2 XML schema, shipped in ``command/cap/CAP-v1.2.xsd``, and the one way
the service reads CAP: :func:`read_cap` (defusedxml, then the XSD, then the domain's reader).

The schema is the OASIS file (http://docs.oasis-open.org/emergency/cap/v1.2/CAP-v1.2.xsd,
"Copyright OASIS Open 2010"; copied from github.com/IBM/cap, resources/CAP-v1.2.xsd at
5f5f07c, where it is kept unchanged). It is loaded once, from this package only: the
validator may not fetch anything (``allow="sandbox"``), and it validates the tree
defusedxml already parsed, so an instance's entities are never resolved here.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from xml.etree.ElementTree import Element

import xmlschema

from command.domain.cap import CapAlert, CapRefused, parse_cap

XSD_PATH = Path(__file__).parent / "cap" / "CAP-v1.2.xsd"


@cache
def cap_schema() -> xmlschema.XMLSchema10:
    return xmlschema.XMLSchema10(str(XSD_PATH), allow="sandbox", defuse="always")


def validate_cap(root: Element) -> None:
    """CapRefused with the first XSD error (its path and reason) when ``root`` is not valid."""
    # allow="none": the instance is the tree in hand, nothing to load for it
    resource = xmlschema.XMLResource(root, allow="none", defuse="always")
    for error in cap_schema().iter_errors(resource):
        reason = error.reason or error.message
        raise CapRefused(f"not valid CAP 1.2 (OASIS schema) at {error.path}: {reason}")


def read_cap(data: bytes) -> CapAlert:
    """Parse safely, validate against the XSD, read: CapRefused(reason) on any failure."""
    return parse_cap(data, validate=validate_cap)
