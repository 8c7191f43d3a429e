"""axe-core, injected through the DevTools protocol so the page's CSP stays active."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from playwright.sync_api import Page

AXE_FILE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


@cache
def axe_source() -> str:
    return AXE_FILE.read_text(encoding="utf-8")


def axe_violations(page: Page) -> list[dict]:
    # page.evaluate runs through CDP (Runtime.evaluate), which script-src does not govern, unlike
    # add_script_tag, whose inline <script> the CSP blocks.
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(axe_source())
    result = page.evaluate(
        """async (tags) => {
            const results = await axe.run(document, {runOnly: {type: "tag", values: tags}});
            return results.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map((n) => ({
                    target: n.target.join(" "), summary: n.failureSummary || "",
                })),
            }));
        }""",
        AXE_TAGS,
    )
    return result


def format_violations(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation['impact']}): {violation['help']} "
            f"<{violation['helpUrl']}>"
        )
        for node in violation["nodes"]:
            summary = " ".join(node["summary"].split())
            lines.append(f"    {node['target']}: {summary}")
    return "\n".join(lines)


def assert_accessible(page: Page, context: str = "") -> None:
    violations = axe_violations(page)
    if violations:
        where = f"{context} " if context else ""
        raise AssertionError(
            f"axe-core found {len(violations)} violation(s) on {where}{page.url}:\n"
            + format_violations(violations)
        )
