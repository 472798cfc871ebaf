"""A review function, written in a notebook, as the source of a self-contained Lambda module.

A Lambda function cannot see the notebook: its module must define everything the function uses.
This module collects it from the function itself, and refuses clearly what it cannot carry over.
Allowed, for the function and every global name it uses (found in its bytecode, nested functions and
comprehensions included):

* other functions defined at the top level of the notebook, by the same rules;
* modules of the standard library, and boto3 / botocore, which the Lambda Python runtime includes
  (``import re``, ``import os.path as p``), and functions or classes taken from them
  (``from re import sub``);
* constants whose ``repr`` reads back as the same value: None, booleans, numbers, strings, bytes,
  and tuples, lists, sets, frozensets and dicts of those;
* compiled regular expressions (``re.compile(...)``).

A lambda expression, a function with free variables of an enclosing function (a closure), and any
other global (an open file, a client, an instance of your own class) are refused, naming the global.
Mutable globals are copied as they are when the function is deployed: a list the function appends
to grows inside Lambda, not in the notebook.
"""

from __future__ import annotations

import ast
import builtins
import dis
import inspect
import re
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from typing import Any

from ivs_widgets.protocol.errors import IvsWidgetsError

#: Third-party packages the AWS Lambda Python runtimes include besides the standard library.
RUNTIME_PACKAGES = frozenset({"boto3", "botocore"})
#: The name of the function the generated module gives Lambda as its handler.
ENTRY = "lambda_handler"
_LITERALS = (type(None), bool, int, float, complex, str, bytes)
_CONTAINERS = (tuple, list, set, frozenset, dict)


class HandlerSourceError(IvsWidgetsError):
    """The function cannot become a self-contained Lambda module; ``fields`` names the global at fault."""


def lambda_module(function: Callable[..., Any]) -> str:
    """The source of a module that defines ``function`` with everything it uses, and a Lambda entry point
    ``lambda_handler(event, context)`` that returns ``function(event)``."""
    module = _Module()
    module.add_function(function)
    entry = f"def {ENTRY}(event, context):\n    return {function.__name__}(event)\n"
    source = "\n\n".join(filter(None, ["\n".join(sorted(module.imports)), "\n".join(module.constants),
                                       *module.functions.values(), entry]))
    compile(source, f"<lambda module of {function.__name__}>", "exec")  # fails here, not in Lambda
    return f'"""Made by ivs-widgets from {function.__name__}() for a Lambda review handler."""\n\n{source}'


class _Module:
    def __init__(self) -> None:
        self.imports: set[str] = set()
        self.constants: list[str] = []
        self.functions: dict[str, str] = {}
        self._named: set[str] = set()

    def add_function(self, function: Callable[..., Any]) -> None:
        name = getattr(function, "__name__", repr(function))
        if not isinstance(function, types.FunctionType):
            raise HandlerSourceError(f"{name!r} is not a Python function: a review handler is a function defined with def",
                                     code="NotAFunction", fields=[name])
        if name == "<lambda>":
            raise HandlerSourceError("a lambda expression cannot be deployed: define the handler with def",
                                     code="LambdaExpression", fields=[name])
        if function.__closure__:
            raise HandlerSourceError(
                f"{name}() uses variables of the function it is defined in ({', '.join(function.__code__.co_freevars)}): "
                "define it at the top level of the notebook", code="Closure", fields=[name])
        if name in self.functions:
            return
        try:
            source = textwrap.dedent(inspect.getsource(function))
        except (OSError, TypeError) as error:
            raise HandlerSourceError(f"the source of {name}() is not available ({error}): define it in a notebook "
                                     "cell or a .py file", code="NoSource", fields=[name]) from None
        self.functions[name] = source
        self._named.add(name)
        for global_name in sorted(_global_names(function.__code__)):
            if global_name in function.__globals__:
                self._add_global(global_name, function.__globals__[global_name], name)
            elif not hasattr(builtins, global_name):
                raise HandlerSourceError(f"{name}() uses {global_name!r}, which is not defined: run the cell that "
                                         "defines it first", code="UndefinedName", fields=[global_name])

    def _add_global(self, name: str, value: Any, user: str) -> None:
        if name in self._named:
            return
        if isinstance(value, types.ModuleType):
            self._check_module(value.__name__, name, user)
            self.imports.add(f"import {value.__name__}" if name == value.__name__
                             else f"import {value.__name__} as {name}")
        elif isinstance(value, types.FunctionType) and value.__module__ == "__main__":
            self._named.add(name)
            if value.__name__ != name:
                raise HandlerSourceError(f"{user}() uses {name!r}, another name for {value.__name__}(): call it by "
                                         "its own name", code="UnsupportedGlobal", fields=[name])
            self.add_function(value)
        elif isinstance(value, type | types.FunctionType | types.BuiltinFunctionType) and value.__module__:
            module = value.__module__
            self._check_module(module, name, user)
            self.imports.add(f"from {module} import {value.__name__}" if value.__name__ == name
                             else f"from {module} import {value.__name__} as {name}")
        elif isinstance(value, re.Pattern):
            self.imports.add("import re")
            self.constants.append(f"{name} = re.compile({value.pattern!r}, {int(value.flags)})")
        elif _is_literal(value):
            self.constants.append(f"{name} = {value!r}")
        elif isinstance(value, set | frozenset) and not value:  # repr "set()" is a call, not a literal
            self.constants.append(f"{name} = {type(value).__name__}()")
        else:
            raise HandlerSourceError(
                f"{user}() uses the global {name!r} ({type(value).__name__}), which a Lambda module cannot "
                "hold: use literals (numbers, strings, lists, sets, dicts of those), compiled regular "
                "expressions, standard-library modules and top-level functions, or define it inside the function",
                code="UnsupportedGlobal", fields=[name])
        self._named.add(name)

    @staticmethod
    def _check_module(module: str, name: str, user: str) -> None:
        top = module.partition(".")[0]
        if top not in sys.stdlib_module_names and top not in RUNTIME_PACKAGES:
            raise HandlerSourceError(
                f"{user}() uses {name!r} from {module!r}, which the Lambda Python runtime does not include "
                "(only the standard library, boto3 and botocore): package it yourself or avoid it",
                code="UnsupportedModule", fields=[name])


def _global_names(code: types.CodeType) -> Iterator[str]:
    """Every global a code object reads, writes or deletes, its nested functions and comprehensions included."""
    for instruction in dis.get_instructions(code):
        if instruction.opname in ("LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_NAME"):
            yield str(instruction.argval)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _global_names(constant)


def _is_literal(value: Any) -> bool:
    if not isinstance(value, _LITERALS + _CONTAINERS):
        return False
    try:
        return bool(ast.literal_eval(repr(value)) == value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return False
