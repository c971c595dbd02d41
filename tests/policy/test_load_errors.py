"""An invalid policy directory stops loading with an error that names the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from privet.policy import PolicyEngine, PolicyLoadError

from .helpers import replace_in


def load_error(directory: Path) -> PolicyLoadError:
    with pytest.raises(PolicyLoadError) as info:
        PolicyEngine.load(directory)
    return info.value


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_syntax_error_names_file_and_line(policy_copy: Path) -> None:
    target = policy_copy / "role_ml_engineer.cedar"
    replace_in(target, 'Action::"training_job.list",', 'Action::"training_job.list" Action::,')
    err = load_error(policy_copy)
    assert err.file.name == "role_ml_engineer.cedar"
    assert err.line == line_of(target, 'Action::"training_job.list" Action::,')
    assert str(err).startswith(f"{target.resolve()}:{err.line}: ")


def test_missing_semicolon_at_end_names_the_last_policy(policy_copy: Path) -> None:
    target = policy_copy / "grants.cedar"
    target.write_text(target.read_text().rstrip().rstrip(";") + "\n")
    err = load_error(policy_copy)
    assert err.file.name == "grants.cedar"
    assert err.line == line_of(target, '@id("grant.model_version.export_weights")')


def test_schema_violation_names_file_line_and_policy(policy_copy: Path) -> None:
    target = policy_copy / "model_governance.cedar"
    replace_in(target, 'resource.state != "approved" };', "resource.status != 1 };")
    err = load_error(policy_copy)
    assert err.file.name == "model_governance.cedar"
    assert err.line == line_of(target, '@id("model.only-approved-versions-serve")')
    assert "model.only-approved-versions-serve" in err.message


@pytest.mark.parametrize(
    ("text", "line", "named"),
    [
        (
            '// extra\n\n@id("extra.one")\npermit (principal, action, resource);\n\n'
            '@id("extra.two")\npermit (principal, action == Action::"dataset.nuke", resource);\n',
            6,
            None,
        ),
        (
            '@id("extra.one")\npermit (principal, action, resource);\n\n'
            "// no id here\nforbid (principal, action, resource);\n",
            5,
            "@id",
        ),
        (
            '@id("role.admin")\npermit (principal, action == Action::"project.read", resource);\n',
            1,
            "role_admin.cedar",
        ),
    ],
    ids=["unknown-action-is-a-validation-error", "no-id-is-refused", "duplicate-id-names-both"],
)
def test_an_added_policy_file_is_refused_at_its_line(
    policy_copy: Path, text: str, line: int, named: str | None
) -> None:
    """An unknown action (a validation error), a policy without an id, an id used twice
    (the message names the other file too)."""
    (policy_copy / "zz_extra.cedar").write_text(text)
    err = load_error(policy_copy)
    assert (err.file.name, err.line) == ("zz_extra.cedar", line)
    if named is not None:
        assert named in err.message


def test_schema_syntax_error_names_schema_line(policy_copy: Path) -> None:
    target = policy_copy / "schema.cedarschema"
    replace_in(target, "entity Dataset = { project: Project };", "entity Dataset = { project: };")
    err = load_error(policy_copy)
    assert err.file.name == "schema.cedarschema"
    assert err.line == line_of(target, "entity Dataset = { project: };")


def test_missing_directory_and_schema(tmp_path: Path, policy_copy: Path) -> None:
    assert "not found" in str(load_error(tmp_path / "nope"))
    (policy_copy / "schema.cedarschema").unlink()
    assert load_error(policy_copy).file.name == "schema.cedarschema"
