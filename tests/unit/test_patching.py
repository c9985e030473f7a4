from crm_core.patching import apply_patch

OLD = {"title": "CEO", "phone": "+1", "tags": ["a"], "attributes": {"x": 1, "y": 2}}


def test_sent_fields_are_set_and_null_clears() -> None:
    new = apply_patch(OLD, {"title": "CTO", "phone": None})
    assert new["title"] == "CTO"
    assert "phone" not in new
    assert OLD["phone"] == "+1"  # the read item is not mutated


def test_attributes_merge_like_rfc7396() -> None:
    assert apply_patch(OLD, {"attributes": {"x": None, "z": 3}})["attributes"] == {"y": 2, "z": 3}
    assert apply_patch(OLD, {"attributes": None})["attributes"] == {}


def test_tags_replace_and_null_empties() -> None:
    assert apply_patch(OLD, {"tags": ["b"]})["tags"] == ["b"]
    assert apply_patch(OLD, {"tags": None})["tags"] == []
