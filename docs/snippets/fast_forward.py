# What the fast path generates for forward(a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor] on
# custom_backend (docs/lowering.md shows it; docs/snippets/snippets.cpp compares).
def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
    _0, _1, = self.__backend.__tbk_execute_2(self.__handle_forward, a, b)
    return _0, _1
