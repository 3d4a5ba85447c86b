"""The approval inbox's web app: what waits, and Approve / Reject as the signed-in approver.

Server-rendered (Starlette and Jinja2, autoescaped: every argument is something a model
wrote), no script: a page is a list of forms. A decision goes the way `steward approve`
sends one (`make_decision`, then the run's `decide` update), carrying the argument digest
the page showed, so a page gone stale (someone decided first, the call was edited) gets
the gate's refusal, shown as a line. The approver is who signed in (`steward.inbox.auth`),
never a field of the form; the page never signs a decision, so a tool whose approvals must
be signed says to use `steward approve --key` instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from steward import approval_view
from steward.inbox import forms, review
from steward.inbox.auth import SESSION_COOKIE, SESSION_SECONDS, Signer, SignInError
from steward.inbox.waiting import age, waiting
from steward.models import DecisionReceipt
from steward.runs import RunError, check_decision, find_request, make_decision

HERE = Path(__file__).resolve().parent
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8234
SECURITY_HEADERS: Final = {
    "content-security-policy": "default-src 'none'; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}


def build_app(
    connect: Callable[[], Awaitable[Client]],
    signer: Signer,
    approvers: Collection[str],
    *,
    ui: str | None = None,
    trust_header: str | None = None,
) -> Starlette:
    """The inbox's ASGI app. `connect` makes its Temporal client when it starts; only
    `approvers` may sign in; `trust_header` names a header a reverse proxy sets to the
    signed-in person (trusted only when given).
    """
    templates = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    templates.filters["visible"] = approval_view.visible
    templates.filters["age"] = age
    allowed = set(approvers)

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(templates.get_template(name).render(**context), status_code=status)

    def message(title: str, text: str, status: int, **context: Any) -> HTMLResponse:
        return page("message.html", status, title=title, text=text, **context)

    def who(request: Request) -> tuple[str, str] | None:
        """The signed-in approver and what their CSRF token is bound to, if anyone."""
        if trust_header:
            vouched = request.headers.get(trust_header, "")
            if vouched:
                return vouched, f"header\0{vouched}"
        cookie = request.cookies.get(SESSION_COOKIE, "")
        if not cookie:
            return None
        try:
            approver, session = signer.session_owner(cookie)
        except SignInError:
            return None
        return approver, f"session\0{session}"

    def refused_sign_in() -> HTMLResponse:
        return message(
            "Sign in first",
            "Open a sign-in link: `steward inbox link YOUR-NAME` prints one.",
            401,
        )

    def not_an_approver(approver: str) -> HTMLResponse:
        return message("Not an approver", f"{approver} is in no approvers group.", 403)

    async def inbox(request: Request) -> Response:
        signed_in = who(request)
        if signed_in is None:
            return refused_sign_in()
        approver, binding = signed_in
        if approver not in allowed:
            return not_an_approver(approver)
        client: Client = request.app.state.client
        try:
            found = await waiting(client)
        except RPCError as err:
            return message("Temporal did not answer", _unreachable(err), 503)
        items = [
            {
                "request": waiting_request,
                "fields": forms.fields(waiting_request, forms.tool_schema(waiting_request.tool)),
                "needs": approval_view.needs(waiting_request),
                "step": found.steps.get(waiting_request.workflow_id, ""),
                "link": _run_link(ui, client.namespace, waiting_request.workflow_id),
                "grounding": review.grounding(
                    waiting_request, found.passages.get(waiting_request.workflow_id, [])
                ),
                "diffs": review.edit_diffs(waiting_request),
            }
            for waiting_request in found.approvals
        ]
        questions = [
            {
                "question": question,
                "step": found.steps.get(question.workflow_id, ""),
                "link": _run_link(ui, client.namespace, question.workflow_id),
            }
            for question in found.questions
        ]
        return page(
            "inbox.html",
            approver=approver,
            csrf=signer.csrf(binding),
            items=items,
            questions=questions,
            unanswered=found.unanswered,
        )

    async def sign_in(request: Request) -> Response:
        try:
            approver = signer.redeem(request.query_params.get("token", ""))
        except SignInError as err:
            return message("Sign-in refused", str(err), 403)
        if approver not in allowed:
            return not_an_approver(approver)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            signer.session(approver),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def sign_out(request: Request) -> Response:
        signed_in = who(request)
        form = await request.form()
        if signed_in is None or not signer.csrf_holds(signed_in[1], str(form.get("csrf", ""))):
            return message("Refused", "This form is stale or not from the inbox.", 403)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    async def decide(request: Request) -> Response:
        signed_in = who(request)
        if signed_in is None:
            return refused_sign_in()
        approver, binding = signed_in
        if approver not in allowed:
            return not_an_approver(approver)
        form = {
            key: value for key, value in (await request.form()).items() if isinstance(value, str)
        }
        if not signer.csrf_holds(binding, form.get("csrf", "")):
            return message(
                "Refused", "This form is stale or not from the inbox: reload the inbox.", 403
            )
        try:
            done = await _decide(request.app.state.client, approver, form)
        except RunError as err:
            return message("Not decided", str(err), 409)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return message("Not decided", "That run is gone: reload the inbox.", 409)
            return message("Not decided", _unreachable(err), 503)
        return message("Decided", done, 200)

    async def stylesheet(request: Request) -> Response:
        css = (HERE / "static" / "inbox.css").read_text()
        return Response(css, media_type="text/css")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.client = await connect()
        yield

    routes = [
        Route("/", inbox, methods=["GET"]),
        Route("/signin", sign_in, methods=["GET"]),
        Route("/signout", sign_out, methods=["POST"]),
        Route("/decide", decide, methods=["POST"]),
        Route("/static/inbox.css", stylesheet, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(SecurityHeaders)])


class SecurityHeaders:
    """Adds the inbox's security headers to every response (no framing, no referrer, no
    script or style from anywhere but the inbox's own stylesheet).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, adding the headers to the response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(event: Message) -> None:
            if event["type"] == "http.response.start":
                kept = [
                    (key, value)
                    for key, value in event.get("headers", [])
                    if key.decode().lower() not in SECURITY_HEADERS
                ]
                added = [(key.encode(), value.encode()) for key, value in SECURITY_HEADERS.items()]
                event = {**event, "headers": kept + added}
            await send(event)

        await self.app(scope, receive, sending)


async def _decide(client: Client, approver: str, form: dict[str, str]) -> str:
    """Send the decision the form asks for as `approver`; what became of it, for a person.
    RunError with the gate's refusal (or why it was not sent).
    """
    approval_id = form.get("approval_id", "")
    approve = form.get("action") == "approve"
    reason = form.get("reason", "").strip()
    digest = form.get("digest", "")
    if not digest:
        # Without it the decision would bind whatever the call is now, not what was shown.
        raise RunError("the form carries no argument digest: reload the inbox")
    if not approve and not reason:
        raise RunError("say why you reject it: the run records the reason")
    check_decision(approval_id, approver, approve=approve, reason=reason, digest=digest)
    request = await find_request(client, approval_id)
    if request.signed:
        raise RunError(
            f"{request.tool} needs signed approvals: decide it with "
            f"`steward approve {request.id} --as {approver} --key KEYFILE`"
        )
    arguments = forms.edited_arguments(request, form) if approve else None
    decision = make_decision(
        request, approver, approve=approve, reason=reason, digest=digest, arguments=arguments
    )
    handle = client.get_workflow_handle(request.workflow_id)
    try:
        receipt = await handle.execute_update("decide", decision, result_type=DecisionReceipt)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        raise RunError(f"refused: {getattr(cause, 'message', None) or cause}") from None
    edited = " (with your edit)" if decision.arguments is not None else ""
    if receipt.status == "awaiting_more":
        return (
            f"Recorded{edited}: {len(receipt.approved_by)} of {receipt.required} approvals for "
            f"{request.tool} in {request.workflow_id}."
        )
    return f"{receipt.status.capitalize()}{edited}: {request.tool} in {request.workflow_id}."


def _unreachable(err: RPCError) -> str:
    # The status only: an RPC error's message may name hosts and internals.
    return f"Temporal did not answer ({err.status.name}); try again in a moment."


def _run_link(ui: str | None, namespace: str, workflow_id: str) -> str | None:
    return approval_view.ui_run_url(ui, namespace, workflow_id) if ui else None


def serve(app: Starlette, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the inbox until interrupted (SIGINT or SIGTERM)."""
    import uvicorn

    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, server_header=False
    )
    uvicorn.Server(config).run()
