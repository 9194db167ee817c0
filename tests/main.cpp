// main.cpp: the doctest main for the unit tests; nothing else belongs here.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
