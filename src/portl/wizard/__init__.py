"""``portl init``: the guided wizard that writes a job file, and its non-interactive twin.

The same questions are asked on a terminal or answered by flags, an answers file and defaults;
both ways produce the same job, checked by loading it as ``portl run`` will. The modules:

- ``interview``: the question model and how one answer is settled; ``checks``: shared checks;
- ``questions``: every question, as data: ``locations`` holds steps 1 and 2 (where rows come
  from and go), ``saving`` step 8 and the checked, atomic write;
- ``discover``: looking at sources and destinations through the connectors;
- ``samples``: conversions suggested by a column's first values (date formats, money...);
- ``answers``: the answers file and the short forms of flags;
- ``compose`` and ``jobfile``: answers into a job, and the job into commented YAML;
- ``prompts`` and ``show``: the terminal side; ``flow``: the eight steps in order.
"""

from __future__ import annotations

from portl.wizard.flow import Outcome, WizardOptions, run_wizard

#: Answers that are paths: in an answers file they are relative to the file's folder.
PATH_KEYS = ("source_path", "destination_path", "source_credentials", "destination_credentials", "output")


def answer_keys() -> list[str]:
    """Every answers-file key, in the order the wizard asks."""
    from portl.wizard.questions import build

    return list(build())


__all__ = ["run_wizard", "WizardOptions", "Outcome", "answer_keys", "PATH_KEYS"]
