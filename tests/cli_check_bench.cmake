# ctest cases for ctml check and ctml bench (uses CLI from tests/CMakeLists.txt).
