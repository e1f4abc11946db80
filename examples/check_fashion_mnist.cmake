# Smoke test of the main job: trains for one epoch on 600 images, then checks
# that every output file exists and that summary.json reports the dense stage
# with a test accuracy above 0.5 (chance is 0.1).
#   cmake -DEXAMPLE=path/to/fashion_mnist -DOUT=dir -P check_fashion_mnist.cmake

file(REMOVE_RECURSE "${OUT}")
execute_process(
    COMMAND "${EXAMPLE}" --epochs 1 --limit-train 600 --limit-test 500 --validation 100
            --batch-size 32 --out "${OUT}" --min-accuracy 0.5
    RESULT_VARIABLE result)
if(NOT result EQUAL 0)
    message(FATAL_ERROR "fashion_mnist exited with ${result}")
endif()

foreach(name model.npz metrics.csv curves.svg summary.json)
    if(NOT EXISTS "${OUT}/${name}")
        message(FATAL_ERROR "fashion_mnist did not write ${OUT}/${name}")
    endif()
endforeach()

file(READ "${OUT}/summary.json" summary)
string(JSON stage_name GET "${summary}" stages 0 name)
string(JSON accuracy GET "${summary}" stages 0 test_accuracy)
string(JSON bytes GET "${summary}" stages 0 model_bytes)
if(NOT stage_name STREQUAL "dense" OR accuracy LESS 0.5 OR bytes LESS 100000)
    message(FATAL_ERROR "unexpected summary: ${summary}")
endif()
file(STRINGS "${OUT}/metrics.csv" rows)
list(LENGTH rows row_count)
if(NOT row_count EQUAL 2)
    message(FATAL_ERROR "metrics.csv should hold a header and one epoch, got: ${rows}")
endif()
message(STATUS "fashion_mnist smoke run: test accuracy ${accuracy}, model ${bytes} bytes")
