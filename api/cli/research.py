"""`casebank project ...` and `casebank cohort ...`: research projects, trials and cohorts for admins.

Every command acts as a named user (``--by``) so the domain's rules hold as on the web: an admin
creates projects; the admin or the project's principal investigator adds members, sites and time
points; cohorts are frozen by their members.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from archive import cohorts, projects, trials, users

from .common import CliError, open_casebank


def _project(session, actor, name: str):  # type: ignore[no-untyped-def]
    return projects.get_project(session, actor, name)


def cmd_project_create(args: argparse.Namespace) -> int:
    with open_casebank(args) as casebank, casebank.database.session() as session:
        actor = users.get_user(session, args.by)
        pi = users.get_user(session, args.pi) if args.pi else None
        project = projects.create_project(
            session, actor, args.name, protocol_id=args.protocol_id, title=args.title or "",
            protocol_name=args.protocol_name or "", sponsor=args.sponsor or "",
            coordinating_center=args.coordinating_center or "", dates_shifted=not args.full_dates,
            principal_investigator=pi,
        )
        print(f"project {project.name} created (protocol {project.protocol_id})"
              + (f" with principal investigator {pi.username}" if pi else ""))
    return 0


def cmd_project_list(args: argparse.Namespace) -> int:
    with open_casebank(args) as casebank, casebank.database.session() as session:
        actor = users.get_user(session, args.by)
        rows = projects.projects_of(session, actor)
        if not rows:
            print("no projects")
        for project, role in rows:
            sites = ", ".join(s.site_id for s in projects.sites_of(session, project)) or "no sites"
            print(f"{project.name:<20} {project.protocol_id:<20} {projects.ROLE_LABELS[role] if role else '(admin)':<24} {sites}")
    return 0


def cmd_project_member(args: argparse.Namespace) -> int:
    with open_casebank(args) as casebank, casebank.database.session() as session:
        actor = users.get_user(session, args.by)
        project = _project(session, actor, args.project)
        projects.require_manager(session, actor, project, "add members")
        member = users.get_user(session, args.user)
        if args.remove:
            projects.remove_member(session, actor, project, member)
            print(f"{member.username} is no longer a member of {project.name}")
            return 0
        if not args.role:
            raise CliError("give the member's role (pi, coordinator, researcher, site_uploader, viewer) or --remove")
        role = projects.parse_role(args.role)
        site = projects.site_by_id(session, project, args.site) if args.site else None
        projects.set_member(session, actor, project, member, role, site)
        print(f"{member.username} is {projects.ROLE_LABELS[role]} of {project.name}" + (f" for site {site.site_id}" if site else ""))
    return 0


def cmd_project_site(args: argparse.Namespace) -> int:
    with open_casebank(args) as casebank, casebank.database.session() as session:
        actor = users.get_user(session, args.by)
        project = _project(session, actor, args.project)
        site = projects.enrol_site(session, actor, project, args.site_id, name=args.name or "",
                                   contact_email=args.contact or "", ae_titles=args.edge_ae)
        print(f"site {site.site_id} enrolled in {project.name}; edges allowed: {', '.join(site.ae_titles) or 'none yet'}")
    return 0


def cmd_project_time_point(args: argparse.Namespace) -> int:
    with open_casebank(args) as casebank, casebank.database.session() as session:
        actor = users.get_user(session, args.by)
        project = _project(session, actor, args.project)
        expected = [projects.parse_expected_series(e) for e in args.expect]
        point = projects.define_time_point(session, actor, project, args.code, label=args.label or "", day=args.day,
                                           window_days=args.window, expected_series=expected)
        wants = ", ".join(f"{e['modality']} '{e['description']}'" for e in point.expected_series) or "no particular series"
        print(f"time point {point.code} ({point.label}) of {project.name} expects {wants}")
    return 0


def cmd_project_matrix(args: argparse.Namespace) -> int:
    with open_casebank(args) as casebank, casebank.database.session() as session:
        actor = users.get_user(session, args.by)
        grid = trials.matrix(session, actor, _project(session, actor, args.project), args.site or "")
        codes = [p.code for p in grid.time_points] + grid.unknown_time_points
        print(f"{'subject':<22}{'site':<8}" + "".join(f"{c:<14}" for c in codes))
        for row in grid.rows:
            cells = "".join(f"{row.cells[c].state.value if c in row.cells else '-':<14}" for c in codes)
            print(f"{row.subject.subject_id:<22}{row.subject.site.site_id:<8}{cells}")
    return 0


def cmd_cohort_freeze(args: argparse.Namespace) -> int:
    from search.cohorts import live_cases

    with open_casebank(args) as casebank, casebank.database.session() as session:
        actor = users.get_user(session, args.by)
        cohort = cohorts.get_cohort(session, actor, args.cohort)
        version = cohorts.freeze(session, actor, cohort, live_cases(session, casebank.index, actor, cohort), args.note or "")
        print(f"cohort {cohort.name} version {version.number}: {len(version.entries)} case(s), "
              f"{cohorts.instance_count(version.entries)} instance(s)")
    return 0


def cmd_cohort_export(args: argparse.Namespace) -> int:
    from export.cohort_export import export_version_to_path

    from . import progress_bar

    with open_casebank(args) as casebank:
        written = export_version_to_path(casebank, args.by, args.cohort, args.version, Path(args.out),
                                         lambda done, total: progress_bar(done, total, "files"))
        print(f"written {written}")
    return 0


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    by = argparse.ArgumentParser(add_help=False)
    by.add_argument("--by", required=True, metavar="USER", help="who acts (an admin, or the project's PI)")

    project = commands.add_parser("project", help="research projects and clinical trials",
                                  description="research projects and clinical trials: members, sites, time points")
    sub = project.add_subparsers(dest="project_command", required=True, metavar="COMMAND")

    def add(name: str, handler, help: str):  # type: ignore[no-untyped-def]
        parser = sub.add_parser(name, help=help, description=help, parents=[common, by])
        parser.set_defaults(handler=handler)
        return parser

    create = add("create", cmd_project_create, "create a project with its collection and hold folders (admins)")
    create.add_argument("name", help="as the edges name it in the manifest's 'project:' line")
    create.add_argument("--protocol-id", required=True, help="Clinical Trial Protocol ID the edges write")
    create.add_argument("--title")
    create.add_argument("--protocol-name")
    create.add_argument("--sponsor")
    create.add_argument("--coordinating-center")
    create.add_argument("--pi", metavar="USER", help="principal investigator")
    create.add_argument("--full-dates", action="store_true", help="sites send real dates (default: dates shifted)")
    add("list", cmd_project_list, "list projects, with your role and their sites")
    member = add("member", cmd_project_member, "add a member with a role, change it, or remove them")
    member.add_argument("project")
    member.add_argument("user")
    member.add_argument("role", nargs="?", help="pi, coordinator, researcher, site_uploader or viewer")
    member.add_argument("--site", help="a site uploader's site ID")
    member.add_argument("--remove", action="store_true")
    site = add("site", cmd_project_site, "enrol a site (or change it): its edges' AE titles and QC contact")
    site.add_argument("project")
    site.add_argument("site_id", metavar="SITE_ID", help="Clinical Trial Site ID, as the site's edge writes it")
    site.add_argument("--name")
    site.add_argument("--contact", metavar="EMAIL", help="who is told when a submission fails QC")
    site.add_argument("--edge-ae", action="append", default=[], metavar="AE", help="calling AE of an edge sending for it (repeatable)")
    point = add("time-point", cmd_project_time_point, "define a time point and the series it expects")
    point.add_argument("project")
    point.add_argument("code", help="Clinical Trial Time Point ID, e.g. baseline, FU1")
    point.add_argument("--label")
    point.add_argument("--expect", action="append", default=[], metavar="MODALITY[:PATTERN]",
                       help="an expected series, e.g. CT:*chest* (repeatable)")
    point.add_argument("--day", type=int, help="nominal days after the first time point")
    point.add_argument("--window", type=int, help="tolerance in days around --day")
    matrix = add("matrix", cmd_project_matrix, "print the subjects x time points QC matrix")
    matrix.add_argument("project")
    matrix.add_argument("--site")

    cohort = commands.add_parser("cohort", help="freeze and export cohorts", description="freeze and export cohorts")
    cohort_sub = cohort.add_subparsers(dest="cohort_command", required=True, metavar="COMMAND")
    freeze = cohort_sub.add_parser("freeze", parents=[common, by], help="freeze a live cohort into a new version")
    freeze.set_defaults(handler=cmd_cohort_freeze)
    freeze.add_argument("cohort", type=int)
    freeze.add_argument("--note")
    export = cohort_sub.add_parser("export", parents=[common, by],
                                   help="write a frozen version as a zip: DICOM with DICOMDIR, CSV, FHIR bundle")
    export.set_defaults(handler=cmd_cohort_export)
    export.add_argument("cohort", type=int)
    export.add_argument("version", type=int)
    export.add_argument("out", metavar="OUT.zip")
