"""`privet projects`, `privet members` and `privet invitations`: a project, its team and
its compliance settings (client commands).

People join by invitation (`members invite` prints a one-time token; the person runs
`invitations accept TOKEN` and gets their own first API key): nobody mints a key for
another person. Applications are service accounts (`members add --service-account`),
whose keys a project admin mints with `privet api-keys create --principal`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from privet.cli import profiles
from privet.cli.client import call, call_with
from privet.cli.output import OutputOption, QuietOption, console, emit, err, group

projects_app = group("Projects and their compliance settings (client).")
members_app = group("Project members: list, add (service accounts), invite people, remove.")
invitations_app = group("Invitations to a project: accept one (prints your key), list, revoke.")

ProjectArg = Annotated[str, typer.Argument(help="Project id.")]
ROLES = "admin, data_steward, ml_engineer, approver, auditor or predictor"


@projects_app.command("create")
def projects_create(
    name: str,
    description: Annotated[str, typer.Option(help="What the project is for.")] = "",
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """Create a project (you become its admin)."""
    project = call("POST", "/v1/projects", json={"name": name, "description": description})
    emit(project, output, quiet=project["id"] if quiet else None)


@projects_app.command("list")
def projects_list(output: OutputOption = None) -> None:
    """Projects you can see."""
    emit(
        call("GET", "/v1/projects"),
        output,
        columns=["id", "name", "description", "created_at", "created_by"],
    )


@projects_app.command("show")
def projects_show(project: ProjectArg, output: OutputOption = None) -> None:
    """One project."""
    emit(call("GET", f"/v1/projects/{project}"), output)


@projects_app.command("settings")
def projects_settings(project: ProjectArg, output: OutputOption = None) -> None:
    """The project's compliance settings (controller, DPO, recipients: the RoPA's)."""
    emit(call("GET", f"/v1/projects/{project}/compliance-settings"), output)


@projects_app.command("set-settings")
def projects_set_settings(
    project: ProjectArg,
    controller: Annotated[str | None, typer.Option(help="The data controller.")] = None,
    controller_contact: Annotated[
        str | None, typer.Option(help="How to reach the controller.")
    ] = None,
    dpo_contact: Annotated[str | None, typer.Option(help="How to reach the DPO.")] = None,
    subject_category: Annotated[
        list[str] | None, typer.Option(help="Category of data subjects (repeatable).")
    ] = None,
    recipient: Annotated[
        list[str] | None, typer.Option(help="Recipient of the data (repeatable).")
    ] = None,
    transfers: Annotated[
        str | None, typer.Option(help="Transfers to third countries, if any.")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Change compliance settings; options left out keep their current values."""
    current = call("GET", f"/v1/projects/{project}/compliance-settings")
    body = {
        "controller": current["controller"] if controller is None else controller,
        "controller_contact": current["controller_contact"]
        if controller_contact is None
        else controller_contact,
        "dpo_contact": current["dpo_contact"] if dpo_contact is None else dpo_contact,
        "subject_categories": current["subject_categories"]
        if subject_category is None
        else subject_category,
        "recipients": current["recipients"] if recipient is None else recipient,
        "transfers": current["transfers"] if transfers is None else transfers,
    }
    emit(call("PUT", f"/v1/projects/{project}/compliance-settings", json=body), output)


# --- members -------------------------------------------------------------------------------


@members_app.command("list")
def members_list(project: ProjectArg, output: OutputOption = None) -> None:
    """Who holds which role in the project (one row per role binding)."""
    emit(
        call("GET", f"/v1/projects/{project}/members"),
        output,
        columns=["id", "principal_id", "role", "created_at", "created_by"],
    )


@members_app.command("add")
def members_add(
    project: ProjectArg,
    role: Annotated[str, typer.Option(help=f"Role to grant: {ROLES}.")],
    principal: Annotated[str | None, typer.Option(help="An existing principal's id.")] = None,
    service_account: Annotated[
        str | None,
        typer.Option(help="Create a service account (an application) with this name."),
    ] = None,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """Grant a role to an existing principal or a new service account (people: `invite`)."""
    if (principal is None) == (service_account is None):
        err.print("[red]error:[/] give exactly one of --principal or --service-account")
        raise typer.Exit(2)
    body: dict[str, Any] = {"role": role}
    if principal is not None:
        body["principal_id"] = principal
    else:
        body["service_account_name"] = service_account
    binding = call("POST", f"/v1/projects/{project}/members", json=body)
    emit(binding, output, quiet=binding["principal_id"] if quiet else None)


@members_app.command("remove")
def members_remove(
    project: ProjectArg,
    binding_id: Annotated[str, typer.Argument(help="Role binding id (`members list`).")],
) -> None:
    """Take a role away (the binding; the principal and its keys stay)."""
    call("DELETE", f"/v1/projects/{project}/members/{binding_id}")
    console.print(f"removed role binding {binding_id} from project {project}", highlight=False)


@members_app.command("invite")
def members_invite(
    project: ProjectArg,
    name: Annotated[str, typer.Option(help="The person's name (their principal's name).")],
    role: Annotated[str, typer.Option(help=f"Role they get: {ROLES}.")],
    ttl_hours: Annotated[
        int | None, typer.Option(help="Hours the invitation stays valid (default 72).")
    ] = None,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """Invite a person: prints a one-time token to hand them (they run `privet
    invitations accept TOKEN` and get their own API key)."""
    body: dict[str, Any] = {"name": name, "role": role}
    if ttl_hours is not None:
        body["ttl_hours"] = ttl_hours
    invitation = call("POST", f"/v1/projects/{project}/invitations", json=body)

    def render(data: dict[str, Any]) -> None:
        console.print(
            f"invitation {data['id']} for {data['name']} as {data['role']} in {data['project_id']}"
            f", valid until {str(data.get('expires_at'))[:19].replace('T', ' ')}",
            highlight=False,
        )
        console.print("token (shown once; hand it to them over a private channel):")
        print(data["token"])

    emit(invitation, output, render=render, quiet=invitation["token"] if quiet else None)


@invitations_app.command("list")
def invitations_list(project: ProjectArg, output: OutputOption = None) -> None:
    """The project's invitations (never their tokens)."""
    emit(
        call("GET", f"/v1/projects/{project}/invitations"),
        output,
        columns=["id", "name", "role", "expires_at", "accepted_at", "revoked_at", "created_by"],
    )


@invitations_app.command("revoke")
def invitations_revoke(
    project: ProjectArg,
    invitation_id: Annotated[str, typer.Argument(help="Invitation id.")],
    output: OutputOption = None,
) -> None:
    """Revoke an invitation not yet accepted: its token stops working."""
    emit(call("DELETE", f"/v1/projects/{project}/invitations/{invitation_id}"), output)


@invitations_app.command("accept")
def invitations_accept(
    token: Annotated[str, typer.Argument(help="The pvi_... token you were given.")],
    key_name: Annotated[str | None, typer.Option(help="Name of your new API key.")] = None,
    login: Annotated[
        str | None,
        typer.Option(help="Also store the new key as this `privet login` profile."),
    ] = None,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """Accept an invitation: creates your user, your role, and your first API key,
    printed once (the token itself is the credential, used once)."""
    url = profiles.credentials().url
    body = {"key_name": key_name} if key_name else {}
    accepted = call_with(url, token, "POST", "/v1/invitations:accept", json=body)
    key = accepted["api_key"]["key"]
    if login:
        data = profiles.load()
        data["profiles"][login] = {"url": url.rstrip("/"), "api_key": key}
        data.setdefault("default", login)
        profiles.save(data)

    def render(data: dict[str, Any]) -> None:
        console.print(
            f"welcome {data['name']} ({data['principal_id']}): {data['role']} in "
            f"{data['project_id']}; your API key (shown once, stored only as a digest):",
            highlight=False,
        )
        print(key)
        if login:
            console.print(f"saved as profile {login!r}", highlight=False)

    emit(accepted, output, render=render, quiet=key if quiet else None)
