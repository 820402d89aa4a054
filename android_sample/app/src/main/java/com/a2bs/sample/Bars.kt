package com.a2bs.sample

import androidx.compose.foundation.background
import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxHeight
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.height
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.layout.width
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.Color
import androidx.compose.ui.unit.dp
import androidx.compose.ui.unit.sp
import com.a2bs.engine.BlendshapeFrame

/** The 52 values as horizontal bars, grouped as the manifest's `blendshape_groups` says. */
@Composable
fun GroupedBars(groups: Map<String, List<String>>, frame: BlendshapeFrame?, modifier: Modifier = Modifier) {
    Column(modifier) {
        for ((group, names) in groups) {
            Text(group.replace('_', ' '), style = MaterialTheme.typography.titleSmall, modifier = Modifier.padding(top = 8.dp))
            for (name in names) {
                val value = frame?.valueOr(name) ?: 0f
                Row(verticalAlignment = Alignment.CenterVertically, modifier = Modifier.height(14.dp)) {
                    Text(name, fontSize = 10.sp, modifier = Modifier.width(130.dp))
                    Box(Modifier.weight(1f).fillMaxHeight().padding(vertical = 2.dp).background(Color(0xFFE6E6E6))) {
                        Box(
                            Modifier.fillMaxWidth(value.coerceIn(0f, 1f)).fillMaxHeight()
                                .background(Color(0xFF3F7FBF))
                        )
                    }
                    Text("%.2f".format(value), fontSize = 10.sp, modifier = Modifier.width(36.dp).padding(start = 4.dp))
                }
            }
        }
    }
}
