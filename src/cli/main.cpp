#include <iostream>
#include "ddtrain/version.hpp"
int main() { std::cout << ddtrain::version() << "\n"; }
