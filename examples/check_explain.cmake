# Smoke test of examples/explain on its quick-model path: trains the main
# job's MLP for 2 epochs on 1,000 images (the checkpoint named by --model does
# not exist), explains 2 test images, then checks that every PNG file exists,
# starts with the PNG signature and has sensible dimensions, and that the
# printed completeness error of integrated gradients is below 1%.
#   cmake -DEXAMPLE=path/to/explain -DOUT=dir -P check_explain.cmake

file(REMOVE_RECURSE "${OUT}")
execute_process(
    COMMAND "${EXAMPLE}" --model "${OUT}/no-such-model.npz" --limit-train 1000 --quick-epochs 2
            --images 2 --samples 4 --steps 64 --scale 2 --out "${OUT}"
    OUTPUT_VARIABLE output
    ERROR_VARIABLE errors
    RESULT_VARIABLE result)
message(STATUS "${output}${errors}")
if(NOT result EQUAL 0)
    message(FATAL_ERROR "explain exited with ${result}")
endif()
if(NOT output MATCHES "training a quick model")
    message(FATAL_ERROR "explain did not say that it trained a quick model")
endif()

# Width and height of a PNG file from its IHDR chunk, which follows the
# 8-byte signature: length 13, "IHDR", then width and height as big-endian
# 32-bit numbers.
function(png_size path width_variable height_variable)
    if(NOT EXISTS "${path}")
        message(FATAL_ERROR "explain did not write ${path}")
    endif()
    file(READ "${path}" header LIMIT 24 HEX)
    string(SUBSTRING "${header}" 0 32 signature_and_ihdr)
    if(NOT signature_and_ihdr STREQUAL "89504e470d0a1a0a0000000d49484452")
        message(FATAL_ERROR "${path} does not start with the PNG signature and IHDR chunk: ${header}")
    endif()
    string(SUBSTRING "${header}" 32 8 width_hex)
    string(SUBSTRING "${header}" 40 8 height_hex)
    math(EXPR width "0x${width_hex}")
    math(EXPR height "0x${height_hex}")
    set(${width_variable} ${width} PARENT_SCOPE)
    set(${height_variable} ${height} PARENT_SCOPE)
endfunction()

# Five panels of 56 pixels (28 at --scale 2) or wider, under a title and
# captions. The stacked picture is as wide as the widest row.
set(widest 0)
set(total_height 0)
foreach(name image_0.png image_1.png)
    png_size("${OUT}/${name}" width height)
    if(width LESS 300 OR width GREATER 2000 OR height LESS 80 OR height GREATER 400)
        message(FATAL_ERROR "${name} is ${width} x ${height} pixels; expected a row of five panels")
    endif()
    if(width GREATER widest)
        set(widest ${width})
    endif()
    math(EXPR total_height "${total_height} + ${height}")
endforeach()
png_size("${OUT}/attributions.png" all_width all_height)
if(NOT all_width EQUAL widest OR NOT all_height EQUAL total_height)
    message(FATAL_ERROR "attributions.png is ${all_width} x ${all_height} pixels; expected "
                        "${widest} x ${total_height}, the two rows stacked")
endif()

string(REGEX MATCH "Largest completeness error of integrated gradients: ([0-9.]+)%" found "${output}")
if(NOT found)
    message(FATAL_ERROR "explain did not print the largest completeness error")
endif()
set(percent "${CMAKE_MATCH_1}")
if(NOT percent LESS 1)
    message(FATAL_ERROR "completeness error ${percent}% is not below 1%")
endif()
message(STATUS "explain smoke run: largest completeness error ${percent}%, pictures ${width} x ${height}")
