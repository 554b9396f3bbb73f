"""A teaching case as a PowerPoint deck (python-pptx), for a talk or an exam:

* a title slide with the case's title (never the contributor's name or GMC number);
* the history, then one slide per key image (windowed and cropped as its series is saved to
  open, on black), then the findings and the discussion, long text split over several slides;
* the answers (diagnosis, differential, codes with their meaning) in the speaker notes of every
  slide and on no slide, so PowerPoint's presenter view is the examiner's screen.

The file's properties name Casebank as author and last editor, not the user who exported it.
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timezone

from PIL import Image
from pptx import Presentation
from pptx.dml.color import RGBColor
from pptx.enum.text import MSO_AUTO_SIZE, PP_ALIGN
from pptx.util import Emu, Inches, Pt

from archive.blobs import BlobStore

from .case_render import CasePlan, ImageRef, jpeg_bytes, render_image

SLIDE_WIDTH, SLIDE_HEIGHT = Inches(13.333), Inches(7.5)  # 16:9
MARGIN = Inches(0.6)
CAPTION_HEIGHT = Inches(0.5)
TEXT_LIMIT = 1000  # characters of teaching text on one slide at 20 pt (about 14 lines of 100)
PICTURE_MAX_SIDE = 2048
PRODUCER = "Casebank"
TITLE_SLIDE, TITLE_ONLY, BLANK = 0, 5, 6  # layouts of python-pptx's default template
BLACK, GREY = RGBColor(0, 0, 0), RGBColor(0xBB, 0xBB, 0xBB)


def _new_deck():  # type: ignore[no-untyped-def]
    deck = Presentation()
    deck.slide_width, deck.slide_height = SLIDE_WIDTH, SLIDE_HEIGHT
    return deck


def _saved(deck) -> bytes:  # type: ignore[no-untyped-def]
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def build_presentation(plan: CasePlan, blobs: BlobStore) -> bytes:
    deck = _new_deck()
    notes = answers(plan)
    _title_slide(deck, plan, notes)
    _text_slides(deck, "History", plan.history, notes)
    for ref in plan.key_images:
        _image_slide(deck, ref, render_image(blobs, ref), notes)
    _text_slides(deck, "Findings", plan.findings, notes)
    _text_slides(deck, "Discussion", plan.discussion, notes)
    _properties(deck, plan.title)
    return _saved(deck)


def build_quiz_presentation(title: str, cases: list[tuple[str, CasePlan, frozenset[str]]], blobs: BlobStore) -> bytes:
    """A quiz as one deck: a title slide, then per case its label slide ("Case N" when the title is
    hidden), the history unless hidden, its key images, and the findings and discussion unless
    hidden; every slide of a case carries that case's answers in its speaker notes."""
    deck = _new_deck()
    cover = deck.slides.add_slide(deck.slide_layouts[TITLE_SLIDE])
    cover.placeholders[0].text = title
    cover.placeholders[1].text = f"{len(cases)} case{'s' if len(cases) != 1 else ''}"
    for label, plan, hidden in cases:
        notes = answers(plan)
        if "title" not in hidden and plan.title:
            notes = f"Title: {plan.title}\n\n{notes}" if notes else f"Title: {plan.title}"
        slide = deck.slides.add_slide(deck.slide_layouts[TITLE_SLIDE])
        slide.placeholders[0].text = label
        modalities = list(dict.fromkeys(s.modality for s in plan.series if s.modality))
        slide.placeholders[1].text = " · ".join(modalities)
        _notes(slide, notes)
        if "history" not in hidden:
            _text_slides(deck, "History", plan.history, notes)
        for ref in plan.key_images:
            _image_slide(deck, ref, render_image(blobs, ref), notes)
        for name, heading in (("findings", "Findings"), ("discussion", "Discussion")):
            if name not in hidden:
                _text_slides(deck, heading, getattr(plan, name), notes)
    _properties(deck, title)
    return _saved(deck)


def answers(plan: CasePlan) -> str:
    """The speaker notes: what the audience is to find out."""
    parts = []
    if plan.diagnosis:
        parts.append(f"Diagnosis: {plan.diagnosis}")
    if plan.differential:
        parts.append(f"Differential: {plan.differential}")
    if plan.codes:
        lines = [f"{system} {code}" + (f" — {display}" if display else "") for system, code, display in plan.codes]
        parts.append("Codes:\n" + "\n".join(lines))
    return "\n\n".join(parts)


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut between paragraphs, else between
    sentences, else between words."""
    pieces: list[tuple[str, str]] = []  # (text, what joins it to the piece before)
    for paragraph in (p.strip() for p in re.split(r"\n+", text)):
        if not paragraph:
            continue
        if len(paragraph) <= limit:
            pieces.append((paragraph, "\n"))
            continue
        for number, sentence in enumerate(re.split(r"(?<=[.!?;])\s+", paragraph)):
            for part in _by_words(sentence, limit) if len(sentence) > limit else [sentence]:
                pieces.append((part, " " if number else "\n"))
    slides: list[str] = []
    current = ""
    for piece, joiner in pieces:
        if current and len(current) + 1 + len(piece) > limit:
            slides.append(current)
            current = piece
        else:
            current = f"{current}{joiner}{piece}" if current else piece
    if current:
        slides.append(current)
    return slides


def _by_words(sentence: str, limit: int) -> list[str]:
    chunks, current = [], ""
    for word in sentence.split():
        while len(word) > limit:  # one unbroken run longer than a slide
            if current:
                chunks.append(current)
                current = ""
            chunks.append(word[:limit])
            word = word[limit:]
        if current and len(current) + 1 + len(word) > limit:
            chunks.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        chunks.append(current)
    return chunks


def _notes(slide, notes: str) -> None:  # type: ignore[no-untyped-def]
    if notes:
        slide.notes_slide.notes_text_frame.text = notes


def _title_slide(deck, plan: CasePlan, notes: str) -> None:  # type: ignore[no-untyped-def]
    slide = deck.slides.add_slide(deck.slide_layouts[TITLE_SLIDE])
    title, subtitle = slide.placeholders[0], slide.placeholders[1]
    title.left, title.top, title.width, title.height = MARGIN, Inches(2.2), SLIDE_WIDTH - 2 * MARGIN, Inches(1.6)
    title.text = plan.title or "Teaching case"
    subtitle.left, subtitle.top = MARGIN, Inches(4.0)
    subtitle.width, subtitle.height = SLIDE_WIDTH - 2 * MARGIN, Inches(1.2)
    modalities = list(dict.fromkeys(s.modality for s in plan.series if s.modality))
    subtitle.text = " · ".join(modalities) if modalities else "Teaching case"
    _notes(slide, notes)


def _text_slides(deck, heading: str, text: str, notes: str) -> None:  # type: ignore[no-untyped-def]
    pages = split_text(text)
    for number, page in enumerate(pages, start=1):
        slide = deck.slides.add_slide(deck.slide_layouts[TITLE_ONLY])
        title = slide.shapes.title
        title.left, title.top, title.width, title.height = MARGIN, Inches(0.3), SLIDE_WIDTH - 2 * MARGIN, Inches(1.0)
        title.text = heading if len(pages) == 1 else f"{heading} ({number}/{len(pages)})"
        box = slide.shapes.add_textbox(MARGIN, Inches(1.5), SLIDE_WIDTH - 2 * MARGIN, SLIDE_HEIGHT - Inches(2.0))
        frame = box.text_frame
        frame.word_wrap = True
        frame.auto_size = MSO_AUTO_SIZE.NONE
        for index, line in enumerate(page.split("\n")):
            paragraph = frame.paragraphs[0] if index == 0 else frame.add_paragraph()
            paragraph.text = line
            paragraph.font.size = Pt(20)
            paragraph.space_after = Pt(8)
        _notes(slide, notes)


def _image_slide(deck, ref: ImageRef, image: Image.Image, notes: str) -> None:  # type: ignore[no-untyped-def]
    slide = deck.slides.add_slide(deck.slide_layouts[BLANK])
    fill = slide.background.fill
    fill.solid()
    fill.fore_color.rgb = BLACK
    image = image.copy()
    image.thumbnail((PICTURE_MAX_SIDE, PICTURE_MAX_SIDE), Image.Resampling.LANCZOS)
    area_w, area_h = SLIDE_WIDTH - Inches(0.4), SLIDE_HEIGHT - Inches(0.2) - CAPTION_HEIGHT
    scale = min(area_w / image.width, area_h / image.height)
    width, height = Emu(int(image.width * scale)), Emu(int(image.height * scale))
    left, top = Emu((SLIDE_WIDTH - width) // 2), Emu(Inches(0.1) + (area_h - height) // 2)
    picture = slide.shapes.add_picture(io.BytesIO(jpeg_bytes(image, 90)), left, top, width, height)
    caption_text = f"{ref.modality} · series {ref.series_label} · image {ref.number} of {ref.of}"
    picture.name = caption_text
    caption = slide.shapes.add_textbox(MARGIN, SLIDE_HEIGHT - CAPTION_HEIGHT - Inches(0.05),
                                       SLIDE_WIDTH - 2 * MARGIN, CAPTION_HEIGHT)
    paragraph = caption.text_frame.paragraphs[0]
    paragraph.text = caption_text
    paragraph.alignment = PP_ALIGN.CENTER
    paragraph.font.size, paragraph.font.color.rgb = Pt(14), GREY
    _notes(slide, notes)


def _properties(deck, title: str) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
    props = deck.core_properties
    props.author = props.last_modified_by = PRODUCER
    props.title = title
    props.subject = props.keywords = props.category = props.comments = ""
    props.identifier = props.content_status = props.version = ""
    props.created = props.modified = now
    props.revision = 1
