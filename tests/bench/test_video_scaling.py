"""The video scaling page: its figures computed from the runs, and its checks able to fail."""

from bench.video_scaling import Run, checks, page


def test_speed_up_and_efficiency_are_against_one_service_process():
    library = Run(1, 100.0, 1500)
    service = [Run(1, 110.0, 1500), Run(2, 60.0, 1500), Run(4, 40.0, 1500)]

    found = checks(library, service)

    assert [(c.measured, c.met) for c in found] == [
        ("0.91", True),
        ("0.92 (1.83 times faster)", True),
        ("0.69 (2.75 times faster)", False),
    ]


def test_a_slow_service_fails_its_check():
    (share, *_rest) = checks(Run(1, 100.0, 1500), [Run(1, 125.0, 1500)])
    assert (share.measured, share.met) == ("0.80", False)


def test_the_page_tables_every_run():
    text = page(10, (1920, 1080), 15000, 30, Run(1, 100.0, 15000), [Run(1, 110.0, 15000)])
    assert "| service | 1 | 110.0 | 136.36 | 1.00 | 1.00 |" in text
    assert "| blurcore alone | 1 | 100.0 | 150.00 | - | - |" in text
    assert "segments of about 30 s" in text
