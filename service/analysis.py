"""``/analysis/*``: coverage with inferred links, the Defense Coverage Index, the minimax portfolio (GET, JSON or
CSV by ``.json``/``.csv`` suffix or ``Accept``) and the flow analysis of a posted deployment (JSON or YAML body)."""

from __future__ import annotations

from flask import Blueprint, request

from mfmkg.analysis import api
from mfmkg.analysis.breaker import DEFAULT_SHARE
from mfmkg.analysis.deployment import DeploymentError, parse_text, validate
from mfmkg.analysis.params import choice, flag, number
from mfmkg.errors import MfmkgError, UnsupportedMediaType
from mfmkg.service.context import ctx
from mfmkg.service.errors import problem_response
from mfmkg.service.representation import choose, json_response, respond, rows_csv, vary_on_accept

bp = Blueprint("analysis", __name__, url_prefix="/analysis")
vary_on_accept(bp)

#: Largest deployment body accepted (bytes); ``ANALYSIS_MAX_BODY`` in the configuration overrides it.
MAX_BODY = 1024 * 1024
JSON_TYPES = {"application/json"}
YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"}
WEIGHTS = ("uniform", "evidence")


class PayloadTooLarge(MfmkgError):
    status = 413
    title = "Content Too Large"


@bp.errorhandler(DeploymentError)
def _deployment_error(exc: DeploymentError):
    return problem_response(exc.status, exc.title, exc.detail, field=exc.field)


def _table(ext: str | None, report: dict, columns: list[str], rows: list[dict]):
    fmt = choose(ext)
    if fmt == "csv":
        return respond(rows_csv(columns, rows), "csv", ext is None)
    return json_response(report, ext is None)


@bp.get("/coverage", defaults={"ext": None})
@bp.get("/coverage.<any(json, csv):ext>")
def coverage(ext: str | None):
    """Which defenses cover which threats: degree, kind (asserted or inferred, with its rule), inheritance."""
    args = request.args
    rep = api.coverage_report(ctx().store, flag("inferred", args.get("inferred")), args.get("threat") or None,
                              args.get("defense") or None)
    return _table(ext, rep, api.COVERAGE_COLUMNS, rep["rows"])


@bp.get("/dci", defaults={"ext": None})
@bp.get("/dci.<any(json, csv):ext>")
def dci(ext: str | None):
    """The Defense Coverage Index of every defense (and of a ``portfolio``), by axis, flow and modality."""
    args = request.args
    rep = api.dci_report(ctx().store, choice("weights", args.get("weights"), WEIGHTS, "uniform"),
                         flag("inferred", args.get("inferred")), args.get("portfolio"))
    return _table(ext, rep, *api.dci_rows(rep))


@bp.get("/minimax", defaults={"ext": None})
@bp.get("/minimax.<any(json, csv):ext>")
def minimax(ext: str | None):
    """The defense portfolio within ``budget`` that minimises the worst residual threat (game value, best response)."""
    args = request.args
    limit = number("time_limit", args.get("time_limit"), strict=True, required=False, default=30)
    rep = api.minimax_report(ctx().store, number("budget", args.get("budget")),
                             choice("weights", args.get("weights"), WEIGHTS, "uniform"),
                             flag("inferred", args.get("inferred")), flag("coverable_only", args.get("coverable_only")),
                             choice("method", args.get("method"), ("auto", "exact", "greedy"), "auto"),
                             float(min(limit, 120)))
    return _table(ext, rep, *api.minimax_rows(rep))


@bp.post("/flow")
def flow():
    """Attack capacity, min cut and circuit breaker of a posted deployment.

    The body is a deployment, or ``{"deployment": {...}, "session": [...] or "JSON lines", "share": 0.5}``;
    ``?share=`` overrides the share."""
    choose(None, ("json",))
    doc = parse_text(_body(), _body_format())
    session, share = None, None
    if isinstance(doc, dict) and "deployment" in doc:
        extra = set(doc) - {"deployment", "session", "share"}
        if extra:
            raise DeploymentError(sorted(map(str, extra))[0], "unknown field (expected deployment, session, share)",
                                  "request")
        session, share = doc.get("session"), doc.get("share")
        doc = doc["deployment"]
    share_arg = request.args.get("share")
    share_value = number("share", share_arg if share_arg is not None else share, strict=True, required=False,
                         default=DEFAULT_SHARE)
    rep = api.flow_report(validate(doc, "deployment"), session, share_value)
    return json_response(rep, True)


def _body_format() -> str | None:
    mime = (request.mimetype or "").lower()
    if not mime or mime in YAML_TYPES:
        return None
    if mime in JSON_TYPES or mime.endswith("+json"):
        return "json"
    raise UnsupportedMediaType(f"POST /analysis/flow reads application/json or application/yaml, not {mime}")


def _body() -> bytes:
    limit = int(ctx().config.get("ANALYSIS_MAX_BODY") or MAX_BODY)
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the deployment is {request.content_length} bytes; at most {limit} are accepted")
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"the deployment is larger than {limit} bytes")
    if not data.strip():
        raise DeploymentError("(document)", "empty body: post a deployment as JSON or YAML", "deployment")
    return data
