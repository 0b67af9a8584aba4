"""`capport validate` as a whole: every real problem, each once, and nothing else.

The validator's value is that it finds every real problem and nothing false: one mistake never
hides another (in the same stage, runner or entry), and never makes another stage look wrong.
"""

from __future__ import annotations

import re

import pytest

from capport_dagster.cli import main
from tests.conftest import builtin_tasks
from tests.test_transforms import ALL_STEPS

#: Independent mistakes, by file (several in one stage or runner where the point is that one does
#: not hide the other), with the exact problem `validate` must print for each. Together in one
#: config directory, `validate` prints exactly these problems and its summary.
PLANTED = {
    "unknown_task.yml": (
        """
        pipeline:
          p_task:
            - { label: load, task: lod_csv, args: { filepath: a.csv, df_name: A } }
            - { label: use, task: transform, args: { name: ident, input: A, save_df: B } }
            - { label: save, task: save_csv, args: { filepath: b.csv, df_name: B } }
        """,
        [
            "config/unknown_task.yml:3, pipeline 'p_task', stage 'load' (#1): unknown task"
            f" 'lod_csv' - did you mean 'load_csv'? (tasks: {builtin_tasks()})"
        ],
    ),
    "unknown_transform.yml": (
        """
        pipeline:
          p_transform:
            - { label: load, task: load_csv, args: { filepath: a.csv, df_name: A } }
            - { label: use, task: transform, args: { name: idnet, input: A, save_df: B } }
            - { label: save, task: save_csv, args: { filepath: b.csv, df_name: B } }
        """,
        [
            "config/unknown_transform.yml:4, pipeline 'p_transform', stage 'use' (#2): unknown"
            " transform 'idnet' - did you mean 'ident'?"
        ],
    ),
    "duplicate_label.yml": (
        """
        pipeline:
          p_dup:
            - { label: load, task: load_csv, args: { filepath: a.csv, df_name: A } }
            - { label: load, task: transform, args: { name: nope, input: A, save_df: B } }
            - { label: save, task: save_csv, args: { filepath: b.csv, df_name: B } }
        """,
        [
            "config/duplicate_label.yml:4, pipeline 'p_dup', stage 'load' (#2): duplicate label"
            " 'load': stages #1 and #2 share it (labels must be unique within a pipeline)",
            "config/duplicate_label.yml:4, pipeline 'p_dup', stage 'load' (#2): unknown"
            " transform 'nope'",
        ],
    ),
    "written_twice.yml": (
        """
        pipeline:
          p_twice:
            - label: load
              task: load_csv
              args: [{ filepath: a.csv, df_name: A }, { filepath: c.csv, df_name: A }]
            - { label: save, task: save_csv, args: { filepath: b.csv, df_name: A } }
        """,
        [
            "config/written_twice.yml:3, pipeline 'p_twice', stage 'load' (#1): writes frame"
            " 'A' twice"
        ],
    ),
    "malformed_args.yml": (
        """
        pipeline:
          p_args:
            - { label: load, task: load_csv, args: { filepath: a.csv, df_name: A } }
            - { label: use, task: transform, args: { name: ident, input: X } }
            - { label: save, task: save_csv, args: { filepath: b.csv, df_name: B } }
        """,
        [
            "config/malformed_args.yml:4, pipeline 'p_args', stage 'use' (#2): malformed args"
            " for task 'transform': save_df: field required",
            "config/malformed_args.yml:4, pipeline 'p_args', stage 'use' (#2): reads frame 'X'"
            " before any earlier stage writes it",
        ],
    ),
    "read_before_write.yml": (
        """
        pipeline:
          p_order:
            - { label: use, task: transform, args: { name: ident, input: A, save_df: B } }
            - { label: load, task: load_csv, args: { filepath: a.csv, df_name: A } }
            - { label: save, task: save_csv, args: { filepath: b.csv, df_name: B } }
        """,
        [
            "config/read_before_write.yml:3, pipeline 'p_order', stage 'use' (#1): reads frame"
            " 'A' before any earlier stage writes it; it is written later by stage 'load' - move"
            " that stage first"
        ],
    ),
    "unused_kwargs.yml": (
        """
        pipeline:
          p_kwargs:
            - { label: load, task: load_csv, args: { filepath: a.csv, df_name: A } }
            - label: use
              task: transform
              args: { name: pick, input: A, save_df: B, kwargs: { col: a, colour: red } }
            - { label: save, task: save_csv, args: { filepath: b.csv, df_name: B } }
        """,
        [
            "config/unused_kwargs.yml:4, pipeline 'p_kwargs', stage 'use' (#2): kwargs 'colour'"
            " not used by transform 'pick' (its placeholders: $$col): remove it or correct the"
            " name"
        ],
    ),
    "bad_model_use.yml": (
        """
        pipeline:
          p_model:
            - { label: load, task: load_csv, args: { filepath: a.csv, df_name: A, model: shape } }
            - { label: save, task: save_csv, args: { filepath: b.csv, df_name: A } }
        """,
        [
            "config/bad_model_use.yml:3, pipeline 'p_model', stage 'load' (#1): unknown model"
            " 'shape' - did you mean 'shaped'?"
        ],
    ),
    "transforms.yml": (
        """
        transform:
          ident:
            - select: { a: null }
          pick:
            - select: { $$col: null }
          broken_used:
            - selct: { a: null }
          broken_unused:
            - bogus: 1
        """,
        [
            "config/transforms.yml:7:7, transform 'broken_used' (used by pipeline 'p_broken',"
            " stage 'use' (#2)): step 1: unknown step 'selct' - did you mean 'select'?"
            f" (valid steps: {ALL_STEPS})",
            "config/transforms.yml:9:7, transform 'broken_unused' (used by no stage): step 1:"
            f" unknown step 'bogus' (valid steps: {ALL_STEPS})",
        ],
    ),
    "broken_used.yml": (
        """
        pipeline:
          p_broken:
            - { label: load, task: load_csv, args: { filepath: a.csv, df_name: A } }
            - { label: use, task: transform, args: { name: broken_used, input: A, save_df: B } }
            - { label: save, task: save_csv, args: { filepath: b.csv, df_name: B } }
        """,
        [],  # its only problem is the transform's, listed there with this stage as its user
    ),
    "models.yml": (
        """
        model:
          shaped:
            a: { dtype: int64 }
          wrong:
            a: { dtype: int46 }
        """,
        [
            "config/models.yml:5:5, model 'wrong' (used by no stage): column 'a': unknown"
            " dtype 'int46' - did you mean 'int64'? (valid dtypes: int, int8, int16, int32,"
            " int64, uint8, uint16, uint32, uint64, float, double, str, char, bool, time, date,"
            " datetime_utc, datetime_nyt, list[str], list[int], list[double])"
        ],
    ),
    "runners.yml": (
        """
        runner:
          nightly:
            pipelines: [p_task]
            max_concurrent: 0
            logger: nolog
            schedule: { every: 10S }
        """,
        [
            "config/runners.yml:2, runner 'nightly' (used by pipeline 'p_task'): cannot read every:"
            " unknown unit 'S': expected s, m (minute), h, d, w, M (month) or Y (year) - units are"
            " case-sensitive: did you mean 's'?\n  '10S'\n     ^\nvalid examples: 10s, 1d, 10m30s,"
            " 2M, Monday at 15:00, at 09:30, weekday at 09:30, Monday at 15:00 repeating every 30m"
            " times 6",
            "config/runners.yml:2, runner 'nightly' (used by pipeline 'p_task'): malformed runner:"
            " max_concurrent: input should be greater than or equal to 1",
            "config/runners.yml:2, runner 'nightly' (used by pipeline 'p_task'): unknown logger"
            " 'nolog' (loggers: none defined)",
        ],
    ),
    "paths.yml": (
        """
        pipeline:
          p_path:
            - { label: load, task: load_csv, args: { filepath: a.csv, df_name: A } }
            - { label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/sub/, df_name: A } }
        """,
        [
            "config/paths.yml:4, pipeline 'p_path', stage 'save' (#2): task 'save_csv': filepath"
            " '$OUTPUT_DIR/sub/' names a directory, not a file (add the file's name:"
            " '$OUTPUT_DIR/sub/name.csv')"
        ],
    ),
    "drops.yml": (
        """
        pipeline:
          p_drop:
            - { label: load, task: load_csv, args: { filepath: a.csv, df_name: A } }
            - { label: use, task: transform, args: { name: drop_b, input: A, save_df: B } }
            - { label: save, task: save_csv, args: { filepath: b.csv, df_name: B } }
        transform:
          drop_b:
            - select: { a: null }
            - drop: { b: true }
        """,
        [
            "config/drops.yml:9:7, transform 'drop_b' (used by pipeline 'p_drop', stage 'use'"
            " (#2)): step 2 (drop): column 'b' not found (columns: a)"
        ],
    ),
}


@pytest.fixture
def planted(write_config):
    return write_config({name: text for name, (text, _lines) in PLANTED.items()})


def test_validate_reports_each_planted_error_once_and_nothing_else(planted, capsys):
    expected = [f"error: {line}" for _text, lines in PLANTED.values() for line in lines]
    assert main(["validate", "-c", str(planted)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    # One problem per entry; the `every` error's caret lines belong to it.
    *problems, summary = re.split(r"\n(?=error: |warning: |the configuration)", err.rstrip("\n"))
    assert sorted(problems) == sorted(expected)
    assert summary == f"the configuration has {len(expected)} errors"


def test_validate_of_one_pipeline_shows_what_is_wrong_with_it_and_nothing_else(planted, capsys):
    assert main(["validate", "-c", str(planted), "-p", "p_broken"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        *(f"error: {line}" for line in PLANTED["transforms.yml"][1][:1]),
        "the configuration has 1 error",
    ]


WARNED = """
pipeline:
  p:
    - { label: load, task: load_csv, args: { filepath: a.csv, df_name: A } }
  q:
    - { label: load, task: load_csv, args: { filepath: a.csv, df_name: A } }
  broken:
    - { label: load, task: load_csv, args: { filepath: a.csv, df_name: A } }
    - { label: use, task: transform, args: { name: nope, input: A, save_df: B } }
"""


def test_warnings_only_for_the_selected_pipelines_without_errors(write_config, capsys):
    config = write_config({"p.yml": WARNED})
    unread = "stage 'load' (#1): frame 'A' is written but no later stage reads it"
    assert main(["validate", "-c", str(config), "-p", "p"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"warning: config/p.yml:3, pipeline 'p', {unread}"
    ]
    assert main(["validate", "-c", str(config)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: config/p.yml:8, pipeline 'broken', stage 'use' (#2): unknown transform 'nope'",
        f"warning: config/p.yml:3, pipeline 'p', {unread}",
        f"warning: config/p.yml:5, pipeline 'q', {unread}",
        "the configuration has 1 error",
    ]


def test_a_transforms_warning_is_shown_once_naming_its_users(write_config, capsys):
    config = write_config(
        {
            "p.yml": """
            pipeline:
              p:
                - { label: load, task: load_csv, args: { filepath: a.csv, df_name: A } }
                - { label: t1, task: transform, args: { name: label, input: A, save_df: B } }
                - { label: t2, task: transform, args: { name: label, input: B, save_df: C } }
                - { label: save, task: save_csv, args: { filepath: c.csv, df_name: C } }
            transform:
              label:
                - select:
                    out: { action: format, args: { template: "$OUTPUT_DIR/{}", cols: [a] } }
            """
        }
    )
    assert main(["validate", "-c", str(config)]) == 0
    users = "pipeline 'p', stage 't1' (#2); pipeline 'p', stage 't2' (#3)"
    assert capsys.readouterr().err.splitlines() == [
        f"warning: config/p.yml:9:7, transform 'label' (used by {users}): step 1 (select):"
        " column 'out' (format): template '$OUTPUT_DIR/{}' contains $OUTPUT_DIR, which a format"
        " template does not expand: the text stays as written (variables are expanded in paths"
        " and URLs)"
    ]
