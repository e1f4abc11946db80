# Smoke test of examples/fashion_cnn: trains a narrow CNN for four epochs on
# 1,000 images (200 more for validation) with crops and flips. From the dense
# model it prunes half of each convolution's channels with one epoch of
# fine-tuning and removes them, and it prunes a second copy to 90% with one
# epoch of fine-tuning, then quantizes that copy to int8, before and after
# one epoch of quantization-aware training. Then it checks that every output
# file exists and that summary.json reports a dense test accuracy above 0.5
# (chance is 0.1), a channels stage in a smaller file, a pruned stage at 90%
# sparsity in a smaller file and both int8 stages, still at 90% sparsity.
#   cmake -DEXAMPLE=path/to/fashion_cnn -DOUT=dir -P check_fashion_cnn.cmake

file(REMOVE_RECURSE "${OUT}")
execute_process(
    COMMAND "${EXAMPLE}" --epochs 4 --limit-train 1200 --limit-test 500 --validation 200
            --batch-size 32 --channels 8,16 --hidden 32 --prune-epochs 1 --channel-epochs 1
            --qat-epochs 1
            --out "${OUT}"
            --min-accuracy 0.5
    RESULT_VARIABLE result)
if(NOT result EQUAL 0)
    message(FATAL_ERROR "fashion_cnn exited with ${result}")
endif()

foreach(name model.npz channels.npz pruned.npz pruned_int8.npz pruned_int8_qat.npz metrics.csv curves.svg graph.dot summary.json)
    if(NOT EXISTS "${OUT}/${name}")
        message(FATAL_ERROR "fashion_cnn did not write ${OUT}/${name}")
    endif()
endforeach()

file(READ "${OUT}/summary.json" summary)
string(JSON stage_name GET "${summary}" stages 0 name)
string(JSON accuracy GET "${summary}" stages 0 test_accuracy)
string(JSON bytes GET "${summary}" stages 0 model_bytes)
if(NOT stage_name STREQUAL "cnn" OR accuracy LESS 0.5)
    message(FATAL_ERROR "unexpected summary: ${summary}")
endif()
string(JSON channels_name GET "${summary}" stages 1 name)
string(JSON channels_accuracy GET "${summary}" stages 1 test_accuracy)
string(JSON channels_bytes GET "${summary}" stages 1 model_bytes)
if(NOT channels_name STREQUAL "channels" OR channels_accuracy LESS 0.3
   OR NOT channels_bytes LESS bytes)
    message(FATAL_ERROR "unexpected channels stage: ${summary}")
endif()
string(JSON pruned_name GET "${summary}" stages 2 name)
string(JSON pruned_sparsity GET "${summary}" stages 2 sparsity)
string(JSON pruned_accuracy GET "${summary}" stages 2 test_accuracy)
string(JSON pruned_bytes GET "${summary}" stages 2 model_bytes)
if(NOT pruned_name STREQUAL "pruned" OR pruned_sparsity LESS 0.89 OR pruned_accuracy LESS 0.3
   OR NOT pruned_bytes LESS bytes)
    message(FATAL_ERROR "unexpected pruned stage: ${summary}")
endif()
foreach(index 3 4)
    string(JSON int8_name GET "${summary}" stages ${index} name)
    string(JSON int8_accuracy GET "${summary}" stages ${index} test_accuracy)
    string(JSON int8_sparsity GET "${summary}" stages ${index} sparsity)
    if(NOT int8_name MATCHES "^pruned_int8" OR int8_accuracy LESS 0.3 OR int8_sparsity LESS 0.89)
        message(FATAL_ERROR "unexpected int8 stage ${index}: ${summary}")
    endif()
endforeach()
file(STRINGS "${OUT}/metrics.csv" rows)
list(LENGTH rows row_count)
if(NOT row_count EQUAL 8)
    message(FATAL_ERROR "metrics.csv should hold a header and seven epochs, got: ${rows}")
endif()
file(READ "${OUT}/graph.dot" dot)
if(NOT dot MATCHES "conv2d" OR NOT dot MATCHES "batch_norm")
    message(FATAL_ERROR "graph.dot does not show the convolution and batch norm nodes")
endif()
message(STATUS "fashion_cnn smoke run: test accuracy ${accuracy}")
