import math

import pytest
import torch

from ganedit.query import global_query, sequential_query, simultaneous_query

# Channel order by m (descending, ties by index): 1, 2, 0, 3, 4
# running sum of (1 - m) in that order:       0.25, 0.5, 1.0, 1.75, 2.7
M = torch.tensor([0.5, 0.75, 0.75, 0.25, 0.05])


@pytest.mark.parametrize(
    "epsilon, expected",
    [
        (0.0, [0, 0, 0, 0, 0]),
        (0.25, [0, 0, 0, 0, 0]),  # 0.25 is not strictly below the budget
        (0.3, [0, 1, 0, 0, 0]),  # tie between channels 1 and 2: lower index wins
        (0.5, [0, 1, 0, 0, 0]),
        (0.51, [0, 1, 1, 0, 0]),
        (1.01, [1, 1, 1, 0, 0]),
        (100.0, [1, 1, 1, 1, 0]),  # budget beyond the total: channel 4 is cut by the threshold
        (math.inf, [1, 1, 1, 1, 0]),
    ],
)
def test_sequential_query_budget(epsilon, expected):
    q = sequential_query(M, epsilon)
    assert q.dtype == M.dtype and q.shape == M.shape
    assert q.tolist() == expected


def test_sequential_query_threshold_is_inclusive():
    m = torch.tensor([0.75, 0.25, 0.5])
    assert sequential_query(m, 10.0, threshold=0.25).tolist() == [1, 0, 1]
    assert sequential_query(m, 10.0, threshold=0.0).tolist() == [1, 1, 1]


def test_sequential_query_all_below_threshold_gives_zero():
    m = torch.tensor([0.05, 0.1, 0.02, 0.0])
    assert sequential_query(m, math.inf).tolist() == [0, 0, 0, 0]


def test_sequential_query_keeps_dtype():
    q = sequential_query(M.double(), 1.01)
    assert q.dtype == torch.float64
    assert q.tolist() == [1, 1, 1, 0, 0]


def test_simultaneous_query_clamps_at_one():
    m = torch.tensor([0.0, 0.25, 0.5, 1.0])
    assert simultaneous_query(m, 3.0).tolist() == [0.0, 0.75, 1.0, 1.0]
    assert simultaneous_query(m, 1.0).tolist() == m.tolist()
    assert simultaneous_query(m, 0.0).tolist() == [0.0, 0.0, 0.0, 0.0]


def test_global_query_is_constant():
    q = global_query(M, 0.5)
    assert q.shape == M.shape and q.dtype == M.dtype
    assert q.tolist() == [0.5] * 5


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: sequential_query(M, -1.0), "epsilon"),
        (lambda: sequential_query(M, math.nan), "epsilon"),
        (lambda: sequential_query(M, 1.0, threshold=1.0), "threshold"),
        (lambda: sequential_query(M, 1.0, threshold=-0.1), "threshold"),
        (lambda: sequential_query(M.reshape(1, 5), 1.0), "1-D"),
        (lambda: sequential_query(torch.tensor([0.5, math.nan]), 1.0), "NaN"),
        (lambda: simultaneous_query(M, -0.5), "lam"),
        (lambda: simultaneous_query(M, math.nan), "lam"),
        (lambda: simultaneous_query(M, math.inf), "lam"),
        (lambda: global_query(M, 1.5), "lam"),
        (lambda: global_query(torch.tensor(0.5), 0.5), "1-D"),
    ],
)
def test_invalid_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()
