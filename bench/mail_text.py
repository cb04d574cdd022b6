"""Reply stripping and HTML-to-text on the test mail of tests/fixtures/mail/: the hub's code beside libraries.

Each `.eml` there is a citizen's mail as a client sends it (Outlook, Gmail, Apple Mail,
Thunderbird, GMX/web.de, mobile apps; German and English; plain, HTML-only and both), and the
`.txt` beside it is the new text a clerk should see. A candidate's text for a mail is what the
hub would store: the plain part (else the HTML part turned into text), with the quoted history
and client signatures cut off. Scored: exact matches, near matches (the same words and
punctuation in the same order, whitespace, list bullets and Markdown emphasis aside), the mean
similarity (difflib ratio, 1.0 for identical), and the time per mail. Reply strippers are scored
on every mail with the hub's HTML converter; HTML converters on the HTML-only mails, each
followed by each stripper. The library candidates are the `mail-bench` extra of pyproject.toml:
`pip install -e ".[mail-bench]"`, then `python -m bench.mail_text` (`--show NAME` prints every
miss of one candidate, `--before COMMIT` adds the hub's code as it was at that commit).
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType

import html2text
import html_text
import inscriptis
import quotequail
from email_reply_parser import EmailReplyParser as GithubReplyParser
from mailparser_reply import EmailReplyParser

from bench.harness import header, machine, table
from channels import email as hub_email

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "fixtures" / "mail"
ROUNDS = 20

Convert = Callable[[str], str]
Strip = Callable[[str], str]


@dataclass(frozen=True)
class Mail:
    name: str
    body: str
    is_html: bool
    expected: str


def load_corpus() -> list[Mail]:
    mails = []
    for path in sorted(CORPUS.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        part = message.get_body(preferencelist=("plain", "html"))
        assert part is not None, path
        mails.append(
            Mail(
                name=path.stem,
                body=part.get_content().replace("\r\n", "\n").strip(),
                is_html=part.get_content_subtype() == "html",
                expected=path.with_suffix(".txt").read_text(encoding="utf-8").rstrip("\n"),
            )
        )
    return mails


def tidy(text: str) -> str:
    """What the hub does around any converter: lines trimmed, at most one blank line in a row."""
    lines = [line.strip() for line in text.replace("\xa0", " ").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html2text_plain(html: str) -> str:
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_links = True
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.ul_item_mark = "-"
    return tidy(converter.handle(html))


CONVERTERS: dict[str, Convert] = {
    "hub (html_to_text)": hub_email.html_to_text,
    "inscriptis, defaults": lambda html: tidy(inscriptis.get_text(html)),
    "html2text": html2text_plain,
    "html-text": lambda html: tidy(html_text.extract_text(html, guess_layout=True)),
}

_GERMAN_AND_ENGLISH = EmailReplyParser(languages=["de", "en"])


def mail_parser_reply(text: str) -> str:
    return _GERMAN_AND_ENGLISH.parse_reply(text) or text


def mail_parser_reply_body(text: str) -> str:
    """The latest reply without what the library takes for signatures and disclaimers."""
    replies = _GERMAN_AND_ENGLISH.read(text).replies
    return (replies[0].body if replies else "") or text


def quotequail_reply(text: str) -> str:
    """What quotequail shows, the attribution line counted with the quote."""
    shown = [part for visible, part in quotequail.quote(text, quote_intro_line=True) if visible]
    return "\n".join(shown).strip() or text


STRIPPERS: dict[str, Strip] = {
    "hub (strip_quoted_history)": hub_email.strip_quoted_history,
    "mail-parser-reply": mail_parser_reply,
    "mail-parser-reply, body": mail_parser_reply_body,
    "email-reply-parser": lambda text: GithubReplyParser.parse_reply(text).strip() or text,
    "quotequail": quotequail_reply,
}


def words(text: str) -> list[str]:
    return [token for token in re.findall(r"\w+|[^\w\s]", text) if token not in {"*", "-", "•", "_"}]


@dataclass
class Score:
    exact: int = 0
    near: int = 0
    similarity: float = 0.0
    seconds: float = 0.0
    mails: int = 0

    def add(self, got: str, expected: str) -> None:
        self.mails += 1
        self.exact += got == expected
        self.near += words(got) == words(expected)
        self.similarity += difflib.SequenceMatcher(None, got, expected).ratio()

    def row(self, name: str) -> list[str]:
        return [
            name,
            f"{self.exact}/{self.mails}",
            f"{self.near}/{self.mails}",
            f"{self.similarity / self.mails:.3f}",
            f"{self.seconds / (self.mails * ROUNDS) * 1e6:.0f}",
        ]


def timed(function: Callable[[str], str], text: str) -> tuple[str, float]:
    started = time.perf_counter()
    for _ in range(ROUNDS):
        result = function(text)
    return result, time.perf_counter() - started


def score_strippers(mails: list[Mail], misses: dict[str, list[tuple[str, str, str]]]) -> list[list[str]]:
    rows = []
    for name, strip in STRIPPERS.items():
        score = Score()
        for mail in mails:
            text = hub_email.html_to_text(mail.body) if mail.is_html else mail.body
            got, seconds = timed(strip, text)
            score.seconds += seconds
            score.add(got, mail.expected)
            if got != mail.expected:
                misses.setdefault(name, []).append((mail.name, got, mail.expected))
        rows.append(score.row(name))
    return rows


def score_converters(mails: list[Mail], misses: dict[str, list[tuple[str, str, str]]]) -> list[list[str]]:
    rows = []
    html_mails = [mail for mail in mails if mail.is_html]
    for converter_name, convert in CONVERTERS.items():
        converted = []
        seconds = 0.0
        for mail in html_mails:
            text, spent = timed(convert, mail.body)
            converted.append(text)
            seconds += spent
        for strip_name, strip in STRIPPERS.items():
            score = Score(seconds=seconds)
            for mail, text in zip(html_mails, converted, strict=True):
                got = strip(text)
                score.add(got, mail.expected)
                if got != mail.expected:
                    misses.setdefault(f"{converter_name} + {strip_name}", []).append((mail.name, got, mail.expected))
            rows.append(score.row(f"{converter_name} + {strip_name}"))
    return rows


def hub_at(commit: str) -> ModuleType:
    """channels/email.py as it was at `commit`, loaded beside today's (its adapter not registered twice)."""
    source = subprocess.run(
        ["git", "show", f"{commit}:channels/email.py"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "email_before.py"
        path.write_text(source.replace("\n@register\n", "\n"), encoding="utf-8")
        spec = importlib.util.spec_from_file_location("email_before", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--show", default="", help="Print each miss of this candidate (a name from the tables).")
    parser.add_argument("--before", default="", help="Also score channels/email.py as it was at this commit.")
    args = parser.parse_args()
    if args.before:
        before = hub_at(args.before)
        CONVERTERS[f"hub at {args.before} (html_to_text)"] = before.html_to_text
        STRIPPERS[f"hub at {args.before} (strip_quoted_history)"] = before.strip_quoted_history
    mails = load_corpus()
    misses: dict[str, list[tuple[str, str, str]]] = {}
    columns = ["candidate", "exact", "near", "similarity", "µs per mail"]
    header("Mail text", f"{len(mails)} mails from {CORPUS.name}/, {ROUNDS} rounds each; {machine()}")
    header("Reply stripping (HTML-only mails converted by the hub's converter)")
    table(score_strippers(mails, misses), columns)
    header(
        "HTML to text, then each stripper (the HTML-only mails)",
        "µs per mail is the converter's alone.",
    )
    table(score_converters(mails, misses), columns)
    for name, got, expected in misses.get(args.show, []):
        print(f"\n### {name}\n--- got\n{got}\n--- expected\n{expected}")


if __name__ == "__main__":
    main()
