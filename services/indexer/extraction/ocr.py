"""OCR of scanned pages through the tesseract command.

pytesseract (Apache-2.0) is the maintained, widely used wrapper around the
tesseract CLI (Apache-2.0); it only shells out, so OCR needs the tesseract
binary and its language data on the machine. `Ocr.detect` checks both once,
at construction, and an unavailable `Ocr` says why, so callers report
scanned pages as skipped with that reason instead of indexing them as empty.

Detection runs the command itself (`--version`, `--list-langs`) rather than
pytesseract's helper, which exits the interpreter on an unparsable version.
pytesseract keeps the command in a module global, so reads are serialized
within the process; tesseract uses several threads for one page anyway.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from dataclasses import dataclass

# pytesseract (Apache-2.0): maintained wrapper of the tesseract CLI (Apache-2.0).
import pytesseract

# Pillow (MIT-CMU): the maintained image library; the page images tesseract reads.
from PIL import Image

_LOCK = threading.Lock()
_PROBE_TIMEOUT_S = 30


class OcrError(Exception):
    """One page could not be read; the message is a short reason."""


@dataclass(frozen=True)
class Ocr:
    command: str = "tesseract"
    languages: str = "eng"  # tesseract's -l: "eng", "eng+deu"
    available: bool = False
    version: str = ""  # "5.3.0" when available
    reason: str = "OCR not configured"  # why not available; "" when it is
    timeout_s: float = 300.0  # per page

    @classmethod
    def detect(cls, command: str = "tesseract", languages: str = "eng") -> Ocr:
        """Probes `command`; the result says whether OCR is available, and why not."""
        name = "tesseract" if command == "tesseract" else f"tesseract ({command})"
        resolved = shutil.which(command)
        if resolved is None:
            return cls.unavailable(f"{name} not found", command=command, languages=languages)
        try:
            version = _run([resolved, "--version"]).split()
            installed = {line.strip() for line in _run([resolved, "--list-langs"]).splitlines()[1:]}
        except (OSError, subprocess.SubprocessError) as exc:
            return cls.unavailable(f"{name} does not run: {exc}", command, languages)
        missing = [lang for lang in languages.split("+") if lang not in installed]
        if missing:
            return cls.unavailable(
                f"tesseract has no language data for {', '.join(missing)}", command, languages
            )
        return cls(
            command=resolved,
            languages=languages,
            available=True,
            version=version[1] if len(version) > 1 else "",
            reason="",
        )

    @classmethod
    def unavailable(cls, reason: str, command: str = "tesseract", languages: str = "eng") -> Ocr:
        return cls(command=command, languages=languages, available=False, reason=reason)

    def read_page(self, image: Image.Image) -> str:
        """The text tesseract reads in `image`. Raises `OcrError`."""
        if not self.available:
            raise OcrError(self.reason)
        with _LOCK:
            previous = pytesseract.pytesseract.tesseract_cmd
            pytesseract.pytesseract.tesseract_cmd = self.command
            try:
                text = pytesseract.image_to_string(
                    image, lang=self.languages, timeout=self.timeout_s
                )
            except pytesseract.TesseractError as exc:
                raise OcrError(f"tesseract failed: {exc.message}".strip()) from exc
            except RuntimeError as exc:  # pytesseract's timeout
                raise OcrError(f"tesseract: {exc}") from exc
            except OSError as exc:
                raise OcrError(f"tesseract does not run: {exc}") from exc
            finally:
                pytesseract.pytesseract.tesseract_cmd = previous
        return str(text)


def _run(args: list[str]) -> str:
    done = subprocess.run(
        args,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=_PROBE_TIMEOUT_S,
        check=True,
    )
    return (done.stdout + done.stderr).decode("utf-8", errors="replace")
