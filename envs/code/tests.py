"""Dataset tests as sandbox tests, with the expected values kept out of the sandbox.

HumanEval writes its tests as `check(candidate)` full of asserts, MBPP as a list of assert lines.
Each assert of a shape we can read (`f(x) == <literal>`, `abs(f(x) - <literal>) < tol`,
`math.isclose(f(x), <literal>, ...)`, `f(x) is True`, `assert f(x)`, `assert not f(x)`) becomes a
"call" test: the child returns f(x) as plain data and the parent compares. Whatever else a test
does (loops, helper checks) runs as one "block" test whose verdict the child reports.
Parsing here is of dataset text (never model output), and `ast.literal_eval` only reads literals.
"""

from __future__ import annotations

import ast
from typing import Any

from reasongym.sandbox import Test


def _literal(node: ast.AST) -> tuple[bool, Any]:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("set", "frozenset") \
            and len(node.args) <= 1 and not node.keywords:
        ok, value = _literal(node.args[0]) if node.args else (True, [])
        return ok, set(value) if ok else None
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _mentions(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(node))


def assert_to_test(stmt: ast.Assert, names: set[str]) -> Test | None:
    """A call test for one assert, or None when its shape is not one we read (it then runs as a block)."""
    test = stmt.test
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) and _mentions(test.operand, names):
        return Test.call(f"bool({ast.unparse(test.operand)})", False)
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, op, right = test.left, test.ops[0], test.comparators[0]
        if isinstance(op, (ast.Eq, ast.Is)):
            for expr, other in ((left, right), (right, left)):
                ok, expected = _literal(other)
                if ok and _mentions(expr, names) and not _mentions(other, names):
                    if isinstance(op, ast.Is) and not isinstance(expected, bool) and expected is not None:
                        return None
                    return Test.call(ast.unparse(expr), expected)
        if isinstance(op, (ast.Lt, ast.LtE)) and isinstance(left, ast.Call) and ast.unparse(left.func) in (
                "abs", "math.fabs") and len(left.args) == 1 and isinstance(left.args[0], ast.BinOp) \
                and isinstance(left.args[0].op, ast.Sub):
            ok_tol, tol = _literal(right)
            ok_exp, expected = _literal(left.args[0].right)
            if ok_tol and ok_exp and _mentions(left.args[0].left, names) and isinstance(tol, (int, float)):
                return Test.call(ast.unparse(left.args[0].left), expected, tolerance=float(tol))
        return None
    if isinstance(test, ast.Call) and ast.unparse(test.func).endswith("isclose") and len(test.args) == 2:
        ok, expected = _literal(test.args[1])
        tolerances = [k.value for k in test.keywords if k.arg in ("rel_tol", "abs_tol")]
        ok_tol, tol = _literal(tolerances[0]) if tolerances else (True, 1e-9)
        if ok and ok_tol and _mentions(test.args[0], names):
            return Test.call(ast.unparse(test.args[0]), expected, tolerance=float(tol))
        return None
    if _mentions(test, names) and not isinstance(test, (ast.BoolOp, ast.Compare)):
        return Test.call(f"bool({ast.unparse(test)})", True)
    return None


def humaneval_tests(test_code: str) -> tuple[str, list[Test]]:
    """(prelude, tests) from a HumanEval `test` field: code around `def check(candidate)` is the prelude."""
    tree = ast.parse(test_code)
    check = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None)
    if check is None or not check.args.args:
        raise ValueError("no check(candidate) function")
    argument = check.args.args[0].arg
    prelude = ast.unparse([n for n in tree.body if n is not check])
    tests, rest = [], []
    for stmt in check.body:
        converted = assert_to_test(stmt, {argument}) if isinstance(stmt, ast.Assert) else None
        if converted is not None:
            tests.append(_renamed(converted, argument))
        else:
            rest.append(stmt)
    if any(isinstance(n, ast.Assert) for stmt in rest for n in ast.walk(stmt)):
        body = ast.unparse(ast.Module(body=rest, type_ignores=[]))
        indented = "\n".join("    " + line for line in body.splitlines())
        tests.append(Test.block(f"def __check({argument}):\n{indented}\n__check(candidate)"))
    return prelude, tests


def _renamed(test: Test, argument: str) -> Test:
    if argument == "candidate":
        return test
    tree = ast.parse(test.expr, mode="eval")
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == argument:
            node.id = "candidate"
    return Test.call(ast.unparse(tree), test.expected, test.tolerance)


def mbpp_tests(test_list: list[str], function_names: set[str] | None = None) -> list[Test]:
    """Tests from MBPP's assert lines; names are the functions the asserts call (from the reference code)."""
    tests = []
    for line in test_list:
        stmt = ast.parse(line.strip()).body[0]
        names = function_names or {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
        converted = assert_to_test(stmt, names) if isinstance(stmt, ast.Assert) else None
        tests.append(converted or Test.block(line.strip()))
    return tests


def defined_functions(code: str) -> set[str]:
    """Top-level function names of a (dataset) reference solution."""
    return {n.name for n in ast.parse(code).body if isinstance(n, ast.FunctionDef)}
