"""Folder catalogue fields: definitions, inheritance and typed values."""

from __future__ import annotations

import pytest

from archive import cases, catalogue, folders
from archive.cases import CaseUpdate
from archive.catalogue import FieldDefinition
from archive.errors import NotFound, InvalidInput
from archive.models import FieldType, FolderKind


def test_fields_are_typed_inherited_and_checked(casebank, make_user):
    admin, bob = make_user("root", admin=True), make_user("bob")
    with casebank.database.session() as session:
        ldm = folders.create_folder(session, admin, "LDM", FolderKind.LDM)
        chest = folders.create_folder(session, admin, "Chest", FolderKind.LDM, parent=ldm)
        catalogue.define_fields(session, admin, ldm, [
            FieldDefinition("grade", FieldType.KEYWORD, "Level", ("basic", "advanced")),
            FieldDefinition("size_mm", FieldType.NUMBER),
        ])
        catalogue.define_fields(session, admin, chest, [FieldDefinition("seen", FieldType.DATE)])
        assert [f.name for f in catalogue.fields_of(session, chest)] == ["grade", "size_mm", "seen"]
        case = cases.create_case(session, admin, chest.id, CaseUpdate(title="Hamartoma"))
        updated = cases.update_case(session, admin, case.id, CaseUpdate(
            custom_fields={"grade": "advanced", "size_mm": "18.5", "seen": "2024-03-01T10:00"}))
        assert updated.custom_fields == {"grade": "advanced", "size_mm": 18.5, "seen": "2024-03-01"}
        assert cases.update_case(session, admin, case.id, CaseUpdate(custom_fields={"size_mm": 42})).custom_fields == {"size_mm": 42}
        for values, message in (({"grade": "expert"}, "not one of basic, advanced"), ({"size_mm": "big"}, "not a number"),
                                ({"seen": "yesterday"}, "not a date"), ({"colour": "red"}, "no catalogue field colour")):
            with pytest.raises(InvalidInput, match=message):
                cases.update_case(session, admin, case.id, CaseUpdate(custom_fields=values))
        with pytest.raises(NotFound):  # bob cannot even see the folder: as if it did not exist
            catalogue.define_fields(session, bob, ldm, [])
        with pytest.raises(InvalidInput, match="at most 10"):
            catalogue.define_fields(session, admin, ldm, [FieldDefinition(f"f{i}") for i in range(11)])
        with pytest.raises(InvalidInput, match="only keyword fields have choices"):
            catalogue.define_fields(session, admin, ldm, [FieldDefinition("n", FieldType.NUMBER, choices=("1",))])
        with pytest.raises(InvalidInput, match="lower-case"):
            catalogue.define_fields(session, admin, ldm, [FieldDefinition("Bad Name")])
