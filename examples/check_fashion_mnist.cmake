# Smoke test of the main job: trains for one epoch on 500 images (100 more
# for validation), prunes to 90% with one epoch of fine-tuning, quantizes to
# int8 after one calibration batch and after one epoch of quantization-aware
# training, then checks that every output file exists and that summary.json
# reports all four stages, the dense one with a test accuracy above 0.5
# (chance is 0.1) and the int8 files at most a third of the dense one.
#   cmake -DEXAMPLE=path/to/fashion_mnist -DOUT=dir -P check_fashion_mnist.cmake
# With -DLAUNCHER="mpirun;-np;2;..." the run is data-parallel, and with
# -DSINGLE=dir (the output of a one-process run) every stage's test accuracy
# must be within 0.01 of that run's: the ranks split each batch, so they
# compute what one process computes, up to float rounding.

file(REMOVE_RECURSE "${OUT}")
execute_process(
    COMMAND ${LAUNCHER} "${EXAMPLE}" --epochs 1 --limit-train 600 --limit-test 500 --validation 100
            --batch-size 32 --prune-epochs 1 --calibration-batches 1 --qat-epochs 1
            --out "${OUT}" --min-accuracy 0.5
    RESULT_VARIABLE result)
if(NOT result EQUAL 0)
    message(FATAL_ERROR "fashion_mnist exited with ${result}")
endif()

foreach(name model.npz pruned.npz pruned_int8.npz pruned_int8_qat.npz metrics.csv curves.svg
        graph.dot summary.json)
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
string(JSON pruned_name GET "${summary}" stages 1 name)
string(JSON pruned_sparsity GET "${summary}" stages 1 sparsity)
string(JSON pruned_bytes GET "${summary}" stages 1 model_bytes)
if(NOT pruned_name STREQUAL "pruned" OR pruned_sparsity LESS 0.89 OR NOT pruned_bytes LESS bytes)
    message(FATAL_ERROR "unexpected pruned stage: ${summary}")
endif()
foreach(index 2 3)
    string(JSON int8_name GET "${summary}" stages ${index} name)
    string(JSON int8_accuracy GET "${summary}" stages ${index} test_accuracy)
    string(JSON int8_bytes GET "${summary}" stages ${index} model_bytes)
    math(EXPR limit "${bytes} / 3")
    if(NOT int8_name MATCHES "^pruned_int8" OR int8_accuracy LESS 0.3 OR int8_bytes GREATER limit)
        message(FATAL_ERROR "unexpected int8 stage ${index}: ${summary}")
    endif()
endforeach()
file(STRINGS "${OUT}/metrics.csv" rows)
list(LENGTH rows row_count)
if(NOT row_count EQUAL 4)
    message(FATAL_ERROR "metrics.csv should hold a header and one epoch per training stage, got: ${rows}")
endif()
if(DEFINED SINGLE)
    # Accuracies are printed with 4 decimals; compare them in ten-thousandths.
    function(ten_thousandths value out)
        string(REPLACE "." "" digits "${value}")
        string(REGEX REPLACE "^0+([0-9])" "\\1" digits "${digits}")
        set(${out} ${digits} PARENT_SCOPE)
    endfunction()
    file(READ "${SINGLE}/summary.json" single)
    foreach(index 0 1 2 3)
        string(JSON here GET "${summary}" stages ${index} test_accuracy)
        string(JSON there GET "${single}" stages ${index} test_accuracy)
        ten_thousandths(${here} a)
        ten_thousandths(${there} b)
        math(EXPR difference "${a} - ${b}")
        if(difference GREATER 100 OR difference LESS -100)
            message(FATAL_ERROR "stage ${index}: test accuracy ${here} on several ranks, "
                                "${there} in one process")
        endif()
    endforeach()
endif()
message(STATUS "fashion_mnist smoke run: test accuracy ${accuracy}, model ${bytes} bytes")
